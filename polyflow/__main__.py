from polyflow.cli import run

run()
