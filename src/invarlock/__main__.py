"""``python -m invarlock`` runs the command-line interface."""

from invarlock.cli import main

if __name__ == "__main__":
    main()
