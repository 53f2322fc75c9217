from devicebucket.cli import main

main()
