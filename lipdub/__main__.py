from lipdub.cli import main

main()
