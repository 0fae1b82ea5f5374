package manifests

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	applycorev1 "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"
)

const (
	// FieldManager is the field manager of every apply of the manifests
	// and of their records.
	FieldManager = "minik-manifests"
	// AnnotationManifest, on an applied object, names the manifest file
	// it comes from.
	AnnotationManifest = "minik.dev/manifest"
	// LabelRecord marks the ConfigMaps in RecordNamespace that record a
	// manifest file; its value is "true".
	LabelRecord = "minik.dev/manifest-record"
	// RecordNamespace holds the records and the events about them.
	RecordNamespace = metav1.NamespaceSystem
	// recordPrefix starts the name of every record.
	recordPrefix = "manifest-"
	// Keys of a record's data.
	keyFile    = "file"
	keyObjects = "objects"
	keySHA256  = "sha256"
)

// ref is an object a manifest file applied: where it is (enough to delete
// it without asking discovery again) and whether the file created it.
// Only objects a file created are deleted when it stops declaring them.
type ref struct {
	Group     string    `json:"group,omitempty"`
	Version   string    `json:"version"`
	Resource  string    `json:"resource"`
	Kind      string    `json:"kind"`
	Namespace string    `json:"namespace,omitempty"`
	Name      string    `json:"name"`
	UID       types.UID `json:"uid"`
	Created   bool      `json:"created"`
}

// key identifies the object across versions of its API.
func (r ref) key() string {
	return r.Group + "/" + r.Kind + "/" + r.Namespace + "/" + r.Name
}

func (r ref) String() string {
	return fmt.Sprintf("%s %s", strings.ToLower(r.Kind), objectName(r.Namespace, r.Name))
}

func (r ref) groupVersion() schema.GroupVersion {
	return schema.GroupVersion{Group: r.Group, Version: r.Version}
}

// fileRecord is what minik remembers of a manifest file: the objects it
// applied, kept in a ConfigMap in RecordNamespace so that it outlives the
// server and moves with the leadership. Events about the file name that
// ConfigMap as their involved object.
type fileRecord struct {
	file    string
	objects []ref
	sha256  string            // of the content last applied in full; "" before
	cm      *corev1.ConfigMap // as last written or read; nil before
}

// recordName is the name of file's record: "manifest-" and the file name
// when that is a valid ConfigMap name, else the name made valid and a hash
// of the file name, so that two files never share a record.
func recordName(file string) string {
	name := recordPrefix + file
	if len(validation.IsDNS1123Subdomain(name)) == 0 {
		return name
	}
	h := fnv.New32a()
	h.Write([]byte(file))
	clean := strings.Trim(invalidNameChars.ReplaceAllString(strings.ToLower(file), "-"), "-.")
	if len(clean) > 200 {
		clean = clean[:200]
	}
	return fmt.Sprintf("%s%s-%08x", recordPrefix, clean, h.Sum32())
}

var invalidNameChars = regexp.MustCompile(`[^a-z0-9.-]+`)

// recordOf reads a record from its ConfigMap.
func recordOf(cm *corev1.ConfigMap) (*fileRecord, error) {
	r := &fileRecord{file: cm.Data[keyFile], sha256: cm.Data[keySHA256], cm: cm}
	if r.file == "" {
		return nil, fmt.Errorf("record %s/%s: data.%s is empty", cm.Namespace, cm.Name, keyFile)
	}
	if s := cm.Data[keyObjects]; s != "" {
		if err := json.Unmarshal([]byte(s), &r.objects); err != nil {
			return nil, fmt.Errorf("record %s/%s: data.%s: %w", cm.Namespace, cm.Name, keyObjects, err)
		}
	}
	return r, nil
}

// loadRecords reads every record.
func loadRecords(ctx context.Context, client kubernetes.Interface) (map[string]*fileRecord, []error, error) {
	list, err := client.CoreV1().ConfigMaps(RecordNamespace).List(ctx, metav1.ListOptions{LabelSelector: LabelRecord + "=true"})
	if err != nil {
		return nil, nil, fmt.Errorf("listing the manifest records: %w", err)
	}
	records := map[string]*fileRecord{}
	var bad []error
	for i := range list.Items {
		r, err := recordOf(&list.Items[i])
		if err != nil {
			bad = append(bad, err)
			continue
		}
		records[r.file] = r
	}
	return records, bad, nil
}

// save writes r (server-side apply, so it is created the first time).
func (r *fileRecord) save(ctx context.Context, client kubernetes.Interface) error {
	if r.objects == nil {
		r.objects = []ref{}
	}
	objects, err := json.Marshal(r.objects)
	if err != nil {
		return err
	}
	cfg := applycorev1.ConfigMap(recordName(r.file), RecordNamespace).
		WithLabels(map[string]string{LabelRecord: "true"}).
		WithData(map[string]string{keyFile: r.file, keyObjects: string(objects), keySHA256: r.sha256})
	cm, err := client.CoreV1().ConfigMaps(RecordNamespace).Apply(ctx, cfg, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	if err != nil {
		return fmt.Errorf("writing the record of %s: %w", r.file, err)
	}
	r.cm = cm
	return nil
}

// remove deletes r's ConfigMap.
func (r *fileRecord) remove(ctx context.Context, client kubernetes.Interface) error {
	err := client.CoreV1().ConfigMaps(RecordNamespace).Delete(ctx, recordName(r.file), metav1.DeleteOptions{})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("deleting the record of %s: %w", r.file, err)
	}
	return nil
}

// createdUID reports whether the file created the object of key whose
// UID is uid.
func (r *fileRecord) createdUID(key string, uid types.UID) bool {
	for _, o := range r.objects {
		if o.key() == key && o.UID == uid {
			return o.Created
		}
	}
	return false
}

// merged is r's objects with applied in place of those of the same
// identity: what the file is known to have applied after a partial apply.
func (r *fileRecord) merged(applied []ref) []ref {
	seen := map[string]bool{}
	for _, a := range applied {
		seen[a.key()] = true
	}
	out := append([]ref(nil), applied...)
	for _, o := range r.objects {
		if !seen[o.key()] {
			out = append(out, o)
		}
	}
	return out
}
