package apiserver

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/minik-dev/minik/server/registry"
)

// fuzzOp is one kind of write FuzzAPI sends: its method, the
// Content-Type of its body, and whether it goes to the collection (a
// create) or to the object named fuzzName.
type fuzzOp struct {
	name        string
	method      string
	contentType string
	create      bool
}

var fuzzOps = []fuzzOp{
	{"create", http.MethodPost, "application/json", true},
	{"update", http.MethodPut, "application/json", false},
	{"json-patch", http.MethodPatch, string(types.JSONPatchType), false},
	{"merge-patch", http.MethodPatch, string(types.MergePatchType), false},
	{"strategic-merge-patch", http.MethodPatch, string(types.StrategicMergePatchType), false},
	{"create-protobuf", http.MethodPost, protobufType, true},
	{"update-protobuf", http.MethodPut, protobufType, false},
	{"create-yaml", http.MethodPost, "application/yaml", true},
}

// isPatch reports whether the op's body is a patch document rather than
// an object.
func (o fuzzOp) isPatch() bool { return o.method == http.MethodPatch }

// fuzzName names the object of every kind that updates and patches
// target; creates use fuzzNewName.
const (
	fuzzName    = "fuzz"
	fuzzNewName = "fuzz-new"
)

// fuzzSamples holds, by kind (KIND.GROUP for a kind of a group other
// than the first to serve it), the part of a valid object beyond
// apiVersion, kind and metadata.name, which sampleObject adds. A kind
// not listed starts from an object with nothing else set; if that is
// not valid, newFuzzHarness fails and names the kind to add here.
var fuzzSamples = map[string]string{
	"ControllerRevision": `{"data":{"spec":{"template":{}}},"revision":1}`,
	"Namespace":          `{"metadata":{"labels":{"team":"fuzz"}}}`,
	"Pod": `{"metadata":{"labels":{"app":"fuzz"},"annotations":{"a":"b"}},"spec":{"containers":[` +
		`{"name":"main","image":"busybox:1.36","command":["sleep","3600"],"ports":[{"name":"http","containerPort":8080}],` +
		`"env":[{"name":"A","value":"1"}],"resources":{"requests":{"cpu":"10m","memory":"16Mi"}}}],` +
		`"tolerations":[{"key":"k","operator":"Exists","effect":"NoSchedule"}]}}`,
	"Service": `{"metadata":{"labels":{"app":"fuzz"}},"spec":{"type":"NodePort","selector":{"app":"fuzz"},` +
		`"ports":[{"name":"http","port":80,"targetPort":8080},{"name":"https","port":443,"targetPort":8443}]}}`,
	"Endpoints": `{"subsets":[{"addresses":[{"ip":"10.42.0.5","nodeName":"fuzz"}],"notReadyAddresses":[{"ip":"10.42.0.6"}],` +
		`"ports":[{"name":"http","port":8080,"protocol":"TCP"}]}]}`,
	"ReplicationController": `{"spec":{"replicas":2,"selector":{"app":"fuzz"},"template":{"metadata":{"labels":{"app":"fuzz"}},` +
		`"spec":{"containers":[{"name":"main","image":"busybox:1.36"}]}}}}`,
	"Node": `{"metadata":{"labels":{"kubernetes.io/hostname":"fuzz"}},"spec":{"podCIDR":"10.42.9.0/24","podCIDRs":["10.42.9.0/24"],` +
		`"taints":[{"key":"k","value":"v","effect":"NoSchedule"}]},"status":{"addresses":[{"type":"InternalIP","address":"10.0.0.9"}]}}`,
	"Event": `{"involvedObject":{"kind":"Pod","namespace":"default","name":"fuzz"},"reason":"Started","message":"started",` +
		`"type":"Normal","source":{"component":"fuzz"},"count":1}`,
	"PodDisruptionBudget": `{"spec":{"minAvailable":1,"selector":{"matchLabels":{"app":"fuzz"}}}}`,
	"ConfigMap":           `{"data":{"app.conf":"port=80"},"binaryData":{"logo.png":"iVBO"}}`,
	"Secret":              `{"type":"kubernetes.io/tls","data":{"tls.crt":"Y2VydA==","tls.key":"a2V5"},"stringData":{"ca.crt":"ca"}}`,
	"ServiceAccount":      `{"secrets":[{"name":"fuzz-token"}],"imagePullSecrets":[{"name":"registry"}],"automountServiceAccountToken":false}`,
	"EndpointSlice": `{"addressType":"IPv4","endpoints":[{"addresses":["10.42.0.5"],"conditions":{"ready":true},"nodeName":"fuzz"}],` +
		`"ports":[{"name":"http","port":8080,"protocol":"TCP","appProtocol":"http"}]}`,
	"Lease": `{"spec":{"holderIdentity":"fuzz","leaseDurationSeconds":40}}`,
	"Event.events.k8s.io": `{"eventTime":"2026-01-01T00:00:00.000000Z","reportingController":"example.com/fuzz","reportingInstance":"fuzz-1",` +
		`"action":"Start","reason":"Started","type":"Normal","regarding":{"kind":"Pod","namespace":"default","name":"fuzz"},"note":"started"}`,
	"PodTemplate": `{"template":{"metadata":{"labels":{"app":"fuzz"}},"spec":{"containers":[` +
		`{"name":"main","image":"busybox:1.36","envFrom":[{"configMapRef":{"name":"fuzz"}}]}]}}}`,
	"Job": `{"spec":{"completions":3,"parallelism":2,"completionMode":"Indexed","backoffLimit":2,"template":{"metadata":{"labels":{"app":"fuzz"}},` +
		`"spec":{"restartPolicy":"Never","containers":[{"name":"main","image":"busybox:1.36"}]}}}}`,
	"CronJob": `{"spec":{"schedule":"*/5 * * * *","concurrencyPolicy":"Forbid","jobTemplate":{"spec":{"template":` +
		`{"spec":{"restartPolicy":"OnFailure","containers":[{"name":"main","image":"busybox:1.36"}]}}}}}}`,
	"ReplicaSet": `{"spec":{"replicas":2,"selector":{"matchExpressions":[{"key":"app","operator":"In","values":["fuzz"]}]},` +
		`"template":{"metadata":{"labels":{"app":"fuzz"}},"spec":{"containers":[{"name":"main","image":"busybox:1.36"}]}}}}`,
	"Deployment": `{"spec":{"replicas":2,"selector":{"matchLabels":{"app":"fuzz"}},"strategy":{"rollingUpdate":{"maxSurge":"50%","maxUnavailable":0}},` +
		`"template":{"metadata":{"labels":{"app":"fuzz"}},"spec":{"containers":[{"name":"main","image":"busybox:1.36"}]}}}}`,
	// Admission configurations match a resource nobody serves, so that
	// the fuzzed requests call no webhook.
	"ValidatingWebhookConfiguration": `{"webhooks":[{"name":"fuzz.example.com","clientConfig":{"url":"https://127.0.0.1:1/v"},` + fuzzHookRest,
	"MutatingWebhookConfiguration":   `{"webhooks":[{"name":"fuzz.example.com","clientConfig":{"url":"https://127.0.0.1:1/m"},"reinvocationPolicy":"IfNeeded",` + fuzzHookRest,
	"ValidatingAdmissionPolicy": `{"spec":{"matchConstraints":{"resourceRules":[{"operations":["CREATE"],"apiGroups":["fuzz.example.com"],` +
		`"apiVersions":["v1"],"resources":["fuzzthings"]}]},"validations":[{"expression":"object.metadata.name != 'x'","message":"no x"}]}}`,
	"ValidatingAdmissionPolicyBinding": `{"spec":{"policyName":"fuzz","validationActions":["Deny"]}}`,
	"MutatingAdmissionPolicy": `{"spec":{"matchConstraints":{"resourceRules":[{"operations":["CREATE","UPDATE"],"apiGroups":["fuzz.example.com"],` +
		`"apiVersions":["v1"],"resources":["fuzzthings"]}]},"reinvocationPolicy":"IfNeeded","mutations":[` +
		`{"patchType":"ApplyConfiguration","applyConfiguration":{"expression":"Object{metadata: Object.metadata{labels: {'fuzz': 'yes'}}}"}},` +
		`{"patchType":"JSONPatch","jsonPatch":{"expression":"[JSONPatch{op: 'add', path: '/metadata/annotations', value: {'fuzz': 'yes'}}]"}}]}}`,
	"MutatingAdmissionPolicyBinding": `{"spec":{"policyName":"fuzz","matchResources":{"namespaceSelector":{"matchLabels":{"fuzz":"yes"}}}}}`,
	"Role":                           `{"rules":[{"verbs":["get","list"],"apiGroups":[""],"resources":["pods","pods/log"],"resourceNames":["fuzz"]}]}`,
	"ClusterRole":                    `{"rules":[{"verbs":["get"],"apiGroups":["apps"],"resources":["deployments"]},{"verbs":["get"],"nonResourceURLs":["/fuzz/*"]}]}`,
	"RoleBinding": `{"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"view"},` +
		`"subjects":[{"kind":"User","name":"fuzz"},{"kind":"ServiceAccount","name":"fuzz"}]}`,
	"ClusterRoleBinding": `{"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"view"},` +
		`"subjects":[{"kind":"Group","name":"fuzz"},{"kind":"ServiceAccount","name":"fuzz","namespace":"default"}]}`,
	"StatefulSet": `{"spec":{"replicas":2,"serviceName":"fuzz","selector":{"matchLabels":{"app":"fuzz"}},` +
		`"template":{"metadata":{"labels":{"app":"fuzz"}},"spec":{"containers":[{"name":"main","image":"busybox:1.36"}]}}}}`,
	"PersistentVolumeClaim": `{"spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}},"storageClassName":""}}`,
	"PersistentVolume": `{"spec":{"capacity":{"storage":"5Gi"},"accessModes":["ReadWriteOnce","ReadOnlyMany"],` +
		`"hostPath":{"path":"/var/lib/fuzz"},"persistentVolumeReclaimPolicy":"Retain"}}`,
	"DaemonSet": `{"spec":{"selector":{"matchLabels":{"app":"fuzz"}},"updateStrategy":{"rollingUpdate":{"maxSurge":1,"maxUnavailable":0}},` +
		`"template":{"metadata":{"labels":{"app":"fuzz"}},"spec":{"nodeSelector":{"disk":"ssd"},"containers":[{"name":"main","image":"busybox:1.36"}]}}}}`,
	"RuntimeClass": `{"handler":"fuzz","overhead":{"podFixed":{"cpu":"10m","memory":"1Mi"}},` +
		`"scheduling":{"nodeSelector":{"disk":"ssd"},"tolerations":[{"key":"k","operator":"Exists","effect":"NoSchedule"}]}}`,
	"PriorityClass": `{"value":1000,"globalDefault":false,"description":"fuzz","preemptionPolicy":"Never"}`,
	"StorageClass":  `{"provisioner":"fuzz.example.com","parameters":{"type":"ssd"},"reclaimPolicy":"Retain","volumeBindingMode":"WaitForFirstConsumer"}`,
	"CSIDriver":     `{"spec":{"attachRequired":false,"podInfoOnMount":true,"volumeLifecycleModes":["Persistent","Ephemeral"]}}`,
	"CSINode":       `{"spec":{"drivers":[{"name":"fuzz.example.com","nodeID":"fuzz","topologyKeys":["topology.example.com/zone"]}]}}`,
	"CSIStorageCapacity": `{"storageClassName":"fuzz","capacity":"10Gi","maximumVolumeSize":"1Gi",` +
		`"nodeTopology":{"matchLabels":{"topology.example.com/zone":"a"}}}`,
	"VolumeAttachment":      `{"spec":{"attacher":"fuzz.example.com","nodeName":"fuzz","source":{"persistentVolumeName":"pv-fuzz"}}}`,
	"VolumeAttributesClass": `{"driverName":"fuzz.example.com","parameters":{"iops":"100"}}`,
	"Ingress": `{"spec":{"ingressClassName":"fuzz","rules":[{"host":"fuzz.example.com","http":{"paths":[{"path":"/","pathType":"Prefix",` +
		`"backend":{"service":{"name":"fuzz","port":{"number":80}}}}]}}],"tls":[{"hosts":["fuzz.example.com"],"secretName":"fuzz-tls"}]}}`,
	"IngressClass": `{"spec":{"controller":"example.com/fuzz","parameters":{"kind":"Params","name":"fuzz","scope":"Cluster"}}}`,
	"ServiceCIDR":  `{"spec":{"cidrs":["10.96.0.0/24","fd00:10:96::/112"]}}`,
	"DeviceClass": `{"spec":{"selectors":[{"cel":{"expression":"device.driver == 'fuzz.example.com'"}}],` +
		`"config":[{"opaque":{"driver":"fuzz.example.com","parameters":{"mode":"fuzz"}}}]}}`,
	"ResourceClaim": `{"spec":{"devices":{"requests":[{"name":"gpu","exactly":{"deviceClassName":"fuzz","count":2}}],` +
		`"config":[{"requests":["gpu"],"opaque":{"driver":"fuzz.example.com","parameters":{"mode":"fuzz"}}}]}}}`,
	"ResourceClaimTemplate": `{"spec":{"metadata":{"labels":{"app":"fuzz"}},"spec":{"devices":{"requests":[{"name":"gpu",` +
		`"firstAvailable":[{"name":"big","deviceClassName":"fuzz"},{"name":"small","deviceClassName":"fuzz","allocationMode":"All"}]}]}}}}`,
	"ResourceSlice": `{"spec":{"driver":"fuzz.example.com","pool":{"name":"fuzz","generation":1,"resourceSliceCount":1},` +
		`"nodeName":"fuzz","devices":[{"name":"gpu-0","attributes":{"model":{"string":"fuzz"}},"capacity":{"memory":{"value":"1Gi"}}}]}}`,
	"DeviceTaintRule": `{"spec":{"deviceSelector":{"driver":"fuzz.example.com","pool":"fuzz"},"taint":{"key":"example.com/fuzz","effect":"NoSchedule"}}}`,
	"HorizontalPodAutoscaler.autoscaling/v2": `{"spec":{"scaleTargetRef":{"apiVersion":"apps/v1","kind":"Deployment","name":"fuzz"},"minReplicas":1,"maxReplicas":3,` +
		`"metrics":[{"type":"Resource","resource":{"name":"cpu","target":{"type":"Utilization","averageUtilization":50}}},` +
		`{"type":"Pods","pods":{"metric":{"name":"requests"},"target":{"type":"AverageValue","averageValue":"10"}}}],` +
		`"behavior":{"scaleDown":{"stabilizationWindowSeconds":60,"policies":[{"type":"Percent","value":50,"periodSeconds":30}]}}}}`,
	"HorizontalPodAutoscaler.autoscaling/v1": `{"spec":{"scaleTargetRef":{"apiVersion":"apps/v1","kind":"Deployment","name":"fuzz"},` +
		`"minReplicas":1,"maxReplicas":3,"targetCPUUtilizationPercentage":50}}`,
	"FlowSchema": `{"spec":{"matchingPrecedence":500,"priorityLevelConfiguration":{"name":"fuzz"},"distinguisherMethod":{"type":"ByUser"},` +
		`"rules":[{"subjects":[{"kind":"Group","group":{"name":"system:authenticated"}}],` +
		`"resourceRules":[{"verbs":["get","list"],"apiGroups":[""],"resources":["pods"],"namespaces":["*"]}],` +
		`"nonResourceRules":[{"verbs":["*"],"nonResourceURLs":["/healthz"]}]}]}}`,
	"PriorityLevelConfiguration": `{"spec":{"type":"Limited","limited":{"nominalConcurrencyShares":5,"lendablePercent":10,` +
		`"limitResponse":{"type":"Queue","queuing":{"queues":16,"handSize":4,"queueLengthLimit":20}}}}}`,
	"StorageVersionMigration": `{"spec":{"resource":{"group":"apps","resource":"deployments"}}}`,
	"ClusterTrustBundle":      `{"spec":{"trustBundle":"-----BEGIN CERTIFICATE-----\nMIIBCDCBu6ADAgECAgEBMAUGAytlcDASMRAwDgYDVQQDEwdmdXp6LWNhMCIYDzAw\nMDEwMTAxMDAwMDAwWhgPMDAwMTAxMDEwMDAwMDBaMBIxEDAOBgNVBAMTB2Z1enot\nY2EwKjAFBgMrZXADIQDV1U6mKVO1m0mt/3EbTLBmnc7VXrsX+gIbBsxCxzXOYqMy\nMDAwDwYDVR0TAQH/BAUwAwEB/zAdBgNVHQ4EFgQU/X7I1SjRxtyyOcMlbvKxeUjR\nLggwBQYDK2VwA0EA70d2JSjy5jc5y9qdbWtBUuzfqgY0waFXTLzRx6jbnEwxwmk3\nfukN4pNnjInxzclBN412X9fer7WTZd1Wc7nxBg==\n-----END CERTIFICATE-----\n"}}`,
	"PodCertificateRequest": `{"spec":{"signerName":"example.com/fuzz","podName":"fuzz","podUID":"u1","serviceAccountName":"default",` +
		`"serviceAccountUID":"u2","nodeName":"fuzz","nodeUID":"u3","maxExpirationSeconds":86400,` +
		`"stubPKCS10Request":"MH8wMwIBADAAMCowBQYDK2VwAyEAIZM8RTKI83KF+f7gFQ2eq4TfmIqEWnr1edui9QrNOrCgADAFBgMrZXADQQCGZL8ONtYf9VIlaGriH1O7de+ocI0fO8i5/AqJyPoJP2PfIY+mA6J6kDchuJEPQfx9kgXExR+gVeXQx/sSlgwP"}}`,
	"CertificateSigningRequest": `{"spec":{"signerName":"example.com/fuzz","usages":["digital signature","client auth"],"expirationSeconds":3600,` +
		`"request":"LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0KTUlHT01FSUNBUUF3RHpFTk1Bc0dBMVVFQXhNRVpuVjZlakFxTUFVR0F5dGxjQU1oQUFGelJNZWw0aDJMbUJlWgp0bGpLb3ROVnI0Uk10RlI5M0ZDelVzbVJWbTAyb0FBd0JRWURLMlZ3QTBFQXpuRjBHc1Y1ZVNaY1dmSnB0eVozClRXdjhVSTJWNGl4K3I2TTZ4Z1BkTVdKdGFueGpBcEZBYjdDZ2FSb2RtTnE3d2o2eTRlTlNGV3pRb2E1VFA4RncKQWc9PQotLS0tLUVORCBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0K"}}`,
}

// fuzzHookRest completes the sample webhook of both configurations.
const fuzzHookRest = `"rules":[{"operations":["CREATE"],"apiGroups":["fuzz.example.com"],"apiVersions":["v1"],"resources":["fuzzthings"]}],` +
	`"sideEffects":"None","admissionReviewVersions":["v1"],"failurePolicy":"Ignore","timeoutSeconds":1}]}`

// sampleObject is a valid object of res named name, as JSON.
func sampleObject(t testing.TB, res *registry.Resource, name string) []byte {
	t.Helper()
	obj := map[string]any{}
	s, ok := fuzzSamples[res.Kind+"."+res.GroupVersion().String()]
	if !ok {
		s, ok = fuzzSamples[res.Kind+"."+res.Group]
	}
	if !ok {
		s, ok = fuzzSamples[res.Kind]
	}
	if ok {
		if err := json.Unmarshal([]byte(s), &obj); err != nil {
			t.Fatalf("sample %s: %v", res.Kind, err)
		}
	}
	obj["apiVersion"] = res.GroupVersion().String()
	obj["kind"] = res.Kind
	m, _ := obj["metadata"].(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	m["name"] = name
	obj["metadata"] = m
	data, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// sampleBody is a valid body of op for res: an object in the op's
// encoding, or a patch that adds a label.
func sampleBody(t testing.TB, res *registry.Resource, op fuzzOp) []byte {
	t.Helper()
	name := fuzzName
	if op.create {
		name = fuzzNewName
	}
	data := sampleObject(t, res, name)
	switch op.contentType {
	case string(types.JSONPatchType):
		return []byte(`[{"op":"add","path":"/metadata/labels/fuzzed","value":"yes"}]`)
	case string(types.MergePatchType), string(types.StrategicMergePatchType):
		return []byte(`{"metadata":{"labels":{"fuzzed":"yes"}}}`)
	case protobufType:
		obj := res.New()
		if err := json.Unmarshal(data, obj); err != nil {
			t.Fatalf("sample %s: %v", res.Kind, err)
		}
		pb, err := encodeProtobuf(obj)
		if err != nil {
			t.Fatalf("sample %s as protobuf: %v", res.Kind, err)
		}
		return pb
	case "application/yaml":
		y, err := yaml.JSONToYAML(data)
		if err != nil {
			t.Fatal(err)
		}
		return y
	}
	return data
}

// fuzzPatches are patch documents of every type that are valid for any
// kind, or that upstream refuses for any kind; each is sent as every
// patch type.
var fuzzPatches = []string{
	`[{"op":"test","path":"/metadata/name","value":"fuzz"},{"op":"copy","from":"/metadata/labels","path":"/metadata/annotations"}]`,
	`[{"op":"remove","path":"/metadata"}]`,
	`[{"op":"replace","path":"/metadata/name","value":"other"}]`,
	`[{"op":"replace","path":"/metadata/namespace","value":"kube-system"}]`,
	`[{"op":"move","from":"/metadata/labels","path":"/status"}]`,
	`[{"op":"add","path":"/metadata/finalizers/-","value":"example.com/f"}]`,
	`[{"op":"add","path":"/metadata/resourceVersion","value":"1"}]`,
	`{"metadata":{"labels":null,"annotations":{"a":null}}}`,
	`{"metadata":{"name":"other"}}`,
	`{"metadata":{"uid":"not-the-uid"}}`,
	`{"metadata":{"labels":{"a":1}}}`,
	`{"metadata":{"$patch":"replace"}}`,
	`{"$patch":"delete"}`,
	`{"spec":{"$patch":"replace"},"status":{"$retainKeys":["x"]}}`,
	`{"spec":null,"status":null}`,
	`{"kind":"Secret","apiVersion":"v1"}`,
	`{"spec":{"containers":[{"name":"main","$patch":"delete"}],"$setElementOrder/containers":[{"name":"x"}]}}`,
	`{"spec":{"containers":{"$patch":"delete"},"tolerations":[{"$patch":"replace"}]}}`,
	`{"metadata":{"$deleteFromPrimitiveList/finalizers":["a"],"$setElementOrder/finalizers":["b"],"finalizers":["b"]}}`,
	`{"spec":{"ports":[{"port":80,"$patch":"delete"}],"$retainKeys":["ports"]},"subsets":[{"$patch":"merge"}]}`,
}

// fuzzMalformed are bodies upstream refuses whatever the op and kind.
var fuzzMalformed = []string{
	``,
	`{`,
	`null`,
	`[]`,
	`{}`,
	`"x"`,
	"\xff\xfe\x00",
	`{"apiVersion":"v2"}`,
	`{"kind":"Secret","apiVersion":"v1","metadata":{"name":"fuzz"}}`,
	`{"metadata":{"name":"Not_A_Name"}}`,
	`{"metadata":{"name":"fuzz","resourceVersion":"abc"}}`,
	`{"metadata":{"name":"fuzz","resourceVersion":"1"}}`,
	`{"metadata":{"name":"fuzz","namespace":"kube-system"}}`,
	`{"metadata":{"generateName":"fuzz-","creationTimestamp":"yesterday"}}`,
	`{"metadata":{"name":"fuzz","labels":{"a":"b","a":"c"},"Name":"other"}}`,
	`{"metadata":{"name":"fuzz"},"spec":{"unknownField":1},"status":"wrong type"}`,
	strings.Repeat("[", 200) + strings.Repeat("]", 200),
	`{"metadata":{"name":"fuzz","annotations":{"a":"` + strings.Repeat("x", 300000) + `"}}}`,
}

// fuzzQueries are query strings sent with the valid bodies.
var fuzzQueries = []string{
	"",
	"dryRun=All",
	"dryRun=All&fieldValidation=Strict",
	"dryRun=true",
	"dryRun=all&dryRun=All",
	"fieldValidation=Strict",
	"fieldValidation=Ignore",
	"fieldValidation=Warn",
	"resourceVersion=1",
	"resourceVersion=0&resourceVersionMatch=Exact",
	"limit=1",
	"limit=-1",
	"limit=abc",
	"fieldManager=fuzz&force=true",
	"pretty=true&watch=1",
	"%zz=1&fieldValidation=Strict&fieldValidation",
}

// addFuzzSeeds adds the seed corpus: every op with a valid body of
// every kind, every patch as every patch type, every malformed body as
// every op, and every query with a valid body; the kinds taking turns
// for the last three.
func addFuzzSeeds(f *testing.F, kinds []*registry.Resource) {
	for k, res := range kinds {
		for o, op := range fuzzOps {
			body := sampleBody(f, res, op)
			f.Add(uint8(k), uint8(o), false, "", body)
			if res.HasStatus && !op.create {
				f.Add(uint8(k), uint8(o), true, "", body)
			}
		}
	}
	for i, p := range fuzzPatches {
		for o, op := range fuzzOps {
			if op.isPatch() {
				f.Add(uint8(i+o), uint8(o), i%2 == 0, "", []byte(p))
			}
		}
	}
	for i, m := range fuzzMalformed {
		for o := range fuzzOps {
			f.Add(uint8(i+o), uint8(o), false, "", []byte(m))
		}
	}
	for i, q := range fuzzQueries {
		for o, op := range fuzzOps {
			k := (i + o) % len(kinds)
			f.Add(uint8(k), uint8(o), false, q, sampleBody(f, kinds[k], op))
		}
	}
}
