"""E1xx: the policy cannot be loaded. Produced by the loading stage (auditor.kumo.loader), not by rule passes."""

from auditor.core.codes import stage_code

LUA_SYNTAX_ERROR = stage_code(
    "E101",
    "lua-syntax-error",
    "error",
    "A Lua file that Lua 5.4 does not compile",
    doc="""
KumoMTA compiles the policy again for every new Lua context. A file that Lua 5.4 rejects means no
context can be created: kumod refuses to start, and a running kumod starts failing every event about
10 seconds after the file changes (new contexts are created on the next configuration epoch). The
message is Lua's own; the column comes from the syntax tree where one is available.
""",
    bad="""
kumo.on('init', function()
  kumo.define_spool { name = 'data', path = '/var/spool/kumomta/data' }
)
""",
    good="""
kumo.on('init', function()
  kumo.define_spool { name = 'data', path = '/var/spool/kumomta/data' }
end)
""",
    fix="Correct the syntax at the reported line; `kumod --validate` confirms the fix.",
    suppressible=False,
)

UNREADABLE_FILE = stage_code(
    "E102",
    "unreadable-file",
    "error",
    "A file that is binary, not UTF-8, too large, outside the tree or cannot be read",
    doc="""
kumod reads the policy entry file and the helpers' data files as UTF-8 text. A binary file, invalid
UTF-8 there, a file that cannot be read, or a symlink that leaves the policy tree cannot be audited, and
usually cannot be loaded by KumoMTA either. Files over the size limit (5 MB by default, `size_limit` in
the configuration) are not parsed. Modules loaded by `require` are read by Lua as bytes, so strings and
comments in another encoding (a Latin-1 comment) are valid there and are audited, not reported; an
entry file that is not UTF-8 is reported and its content still audited.
""",
    bad="init.lua saved as UTF-16, or policy/shared.lua -> /home/alice/shared.lua (a symlink out of the tree)",
    good="init.lua saved as UTF-8; shared modules committed inside the policy repository",
    fix="Save the file as UTF-8 text, keep it under the size limit, and keep every file inside the tree.",
    suppressible=False,
)

DATA_SYNTAX_ERROR_CODE = "E103"  # declared with the data-file rules

MISSING_FILE = stage_code(
    "E104",
    "missing-file",
    "error",
    "A required module or a data file named by the policy does not exist in the tree",
    doc="""
`require` fails with "module not found" when a Lua context is created, and the helpers fail to load a
data file that is missing (the queue, sources, listener-domain and DKIM helpers raise; shaping logs
an error and runs without the file). Paths under `/opt/kumomta/etc/` are mapped into the audited tree
(see `--path-map`); modules are searched on KumoMTA's package.path. Two cases are warnings, not
errors: a relative data-file path found nowhere (kumod opens it relative to its working directory,
which the tree does not tell; the audited root and the policy's directory are tried), and a data
file missing when a module or snippet is audited on its own (the tree it is deployed with may
hold it).
""",
    bad="""
local sources = require 'policy-extras.sources'
sources:setup { '/opt/kumomta/etc/policy/source.toml' } -- the file is sources.toml
""",
    good="""
local sources = require 'policy-extras.sources'
sources:setup { '/opt/kumomta/etc/policy/sources.toml' }
""",
    fix="Correct the name, add the file to the repository, or map its directory with --path-map.",
    suppressible=False,
)

REQUIRE_CYCLE = stage_code(
    "E105",
    "require-cycle",
    "error",
    "Modules that require each other in a loop",
    doc="""
Lua's `require` marks a module as loading while its body runs; a module that is required again
before it finished raises "loop or previous error loading module". The policy then fails to load in
every new Lua context.
""",
    bad="""
-- a.lua
local b = require 'b'
-- b.lua
local a = require 'a'
""",
    good="""
-- move what both need into c.lua and require it from a.lua and b.lua
local c = require 'c'
""",
    fix="Break the loop: move the shared code into a third module, or require lazily inside a function.",
    suppressible=False,
)
