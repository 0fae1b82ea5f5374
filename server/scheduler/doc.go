// Package scheduler assigns unscheduled pods to nodes.
//
// The scheduler watches pods and nodes through shared informers, keeps a
// cache of every node's free resources, and binds each pending pod to the
// best node through the pods/binding subresource, as kube-scheduler does.
//
// # Cycle
//
// One goroutine pops pods from the queue and runs a scheduling cycle for
// each: every node is checked by the filters (ready and schedulable,
// taints, node selector and required node affinity, host ports, resource
// requests), the nodes that pass are scored (least allocated, spreading of
// pods with the same controller), and the best one wins (ties broken at
// random). The pod is then assumed onto that node in the cache, so the next
// cycle sees its requests before the informer reports the binding, and a
// pool of binder goroutines posts the binding concurrently. A failed binding
// forgets the assumed pod and requeues it.
//
// # Unschedulable pods
//
// A pod that fits nowhere gets the condition PodScheduled=False with reason
// Unschedulable and a FailedScheduling event. The message aggregates the
// per-node explanations of the filters, most frequent first:
//
//	0/3 nodes are available: 2 Insufficient cpu, 1 node(s) had untolerated taint {key: value}
//
// A pod that uses a PersistentVolumeClaim that is missing, being deleted
// or not yet bound fits no node, as with kube-scheduler's volume binding
// pre-filter: "0/1 nodes are available: pod has unbound immediate
// PersistentVolumeClaims." A change of any claim retries such pods.
//
// Such a pod waits in the queue until the cluster changes (a node is added
// or updated, a pod is deleted or finishes), with a per-pod back-off between
// attempts, and is retried anyway after a while.
//
// # Extended resources
//
// Requests of resources other than cpu, memory and pods (example.com/foo,
// hugepages) count against what the node's status.allocatable offers of
// them, as cpu and memory do: "1 Insufficient example.com/foo".
//
// # Preemption
//
// A pod that fits nowhere may evict pods of lower spec.priority (see
// preempt.go for how the node and the victims are chosen). The victims
// get the condition DisruptionTarget=True with reason
// PreemptionByScheduler and a Preempted event, and are deleted
// gracefully; the preemptor gets status.nominatedNodeName and waits for
// them to go, its requests reserved on that node against pods of lower or
// equal priority. Pods of equal or higher priority are never victims, and
// a pod with preemptionPolicy Never never preempts. Pods whose eviction
// would exceed their PodDisruptionBudget are evicted only when nothing
// else makes room. Unlike kube-scheduler, preemption tries every node
// rather than a sample in large clusters. Pending pods are tried highest
// priority first, first in, first out among equals.
package scheduler
