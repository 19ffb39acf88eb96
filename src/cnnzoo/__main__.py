from cnnzoo.cli import entry

entry()
