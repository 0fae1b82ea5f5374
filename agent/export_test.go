package agent

// BridgeName is bridgeName, for tests that clean up after an agent.
var BridgeName = bridgeName
