package controller

// WithClaimProtocol returns o with the claim protocol the controller
// speaks set to v: tests play the controller of another release.
func WithClaimProtocol(o Options, v int) Options {
	o.claimProtocol = v
	return o
}
