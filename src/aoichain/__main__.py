from aoichain.cli import main

main()
