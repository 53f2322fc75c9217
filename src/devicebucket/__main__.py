from devicebucket.entry.cli import main

main()
