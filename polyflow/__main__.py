from polyflow.cli import app

app(prog_name="polyflow")
