"""Running journeys: Temporal client and worker set-up, starting runs, the simulator."""
