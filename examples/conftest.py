# The examples' tests use bpfkit's pytest plugin (loaded by its pytest11 entry point):
# nothing to set up here.
