from devicebucket.entry.cli import main

main(prog_name="devicebucket")
