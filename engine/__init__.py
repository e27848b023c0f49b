"""nbm core library: data contract, features, model, policy, evaluation, simulator."""
