// Package secretaccess gives the node agent read access to exactly the pull
// secrets that SandboxPools name, and no other Secret: one Role per
// namespace that has pools naming pull secrets (get, by resourceNames) and
// a RoleBinding of it to the agent's ServiceAccount, kept by a reconciler
// the sandbox-webhook binary runs. A namespace whose pools name no pull
// secret, or that has no pools, has neither.
//
// So a compromised agent, which pre-pulls the pools' images with those
// secrets, cannot read a Secret outside the namespaces that have pools, nor
// any Secret there that no pool names.
package secretaccess
