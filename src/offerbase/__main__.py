from offerbase.cli import main

main()
