// Package keychain turns Kubernetes image pull secrets
// (kubernetes.io/dockerconfigjson and kubernetes.io/dockercfg) into a
// go-containerregistry authn.Keychain that matches registries and repository
// prefixes the way the kubelet does: the most specific entry wins, a "*"
// label matches one host label, and a registry without an entry is anonymous.
//
// The webhook's admission handler reads images' ENTRYPOINT and CMD with it
// (webhook/entrypoint), and the pre-puller pulls private images with it
// (prepuller.AuthFor), so both see a pod's credentials alike.
package keychain
