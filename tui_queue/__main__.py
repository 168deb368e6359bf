from tui_queue.cli import main

raise SystemExit(main())
