"""One module per upstream API the simulator can speak; see `app.simulator.wire`."""
