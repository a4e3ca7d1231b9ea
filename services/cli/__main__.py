from streamsense.services.cli.app import main

main()
