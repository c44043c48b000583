from ckpt_gui.cli import main

raise SystemExit(main())
