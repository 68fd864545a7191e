"""The ``bpfkit`` command line: a thin shell over the library."""

from __future__ import annotations


def entry() -> None:
    """Console-script entry point (and ``python -m bpfkit``).

    A Ctrl-C at any moment exits quietly with status 130: also while the command's modules
    are imported (before :func:`bpfkit.cli.main.main` can catch it) and while the process
    exits (closing what the command opened).
    """
    import sys  # already loaded by the interpreter: nothing runs here

    status = 130
    try:
        replayed = None
        if sys.argv[1:2] == ["load"]:
            # A load recorded by an earlier run is replayed without the rest of bpfkit.
            from bpfkit.cli.load import replayed as replay_load

            replayed = replay_load(sys.argv[2:])
        if replayed is not None:
            sys.exit(replayed)  # its descriptors are closed: nothing is left to finalize
        else:
            from bpfkit.cli.main import main

            status = main()
    except KeyboardInterrupt:
        status = 130
    except RuntimeError as e:
        # A Ctrl-C inside class creation arrives wrapped ("Error calling __set_name__").
        if not isinstance(e.__cause__, KeyboardInterrupt):
            raise
        status = 130
    try:
        # Exiting runs finalizers that release kernel resources: no Ctrl-C cuts them short.
        import signal

        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except KeyboardInterrupt:
        status = 130
    sys.exit(status)
