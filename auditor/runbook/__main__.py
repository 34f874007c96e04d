from auditor.runbook.cli import main

raise SystemExit(main())
