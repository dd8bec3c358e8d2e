# make demo: the main job on the embedded local cluster.

.PHONY: demo
demo: cluster-up images ## Bring up the local cluster, install the chart, and run a command in an injected pod
	@IMAGE_TAG=$(IMAGE_TAG) $(cluster_env) $(ROOT)/e2e/demo.sh
