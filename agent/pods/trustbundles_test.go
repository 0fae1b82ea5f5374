package pods

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// testCA is a new self-signed CA certificate, as PEM, and its DER.
func testCA(t *testing.T, cn string) (string, []byte) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), der
}

func trustBundle(name, signer string, labels map[string]string, pems ...string) *certificatesv1.ClusterTrustBundle {
	return &certificatesv1.ClusterTrustBundle{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: certificatesv1.ClusterTrustBundleSpec{SignerName: signer, TrustBundle: strings.Join(pems, "")}}
}

// pemOf is the PEM of ders in the order given.
func pemOf(ders ...[]byte) string {
	var b strings.Builder
	for _, d := range ders {
		b.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d}))
	}
	return b.String()
}

// sortedDER orders ders as a trust bundle file does.
func sortedDER(ders ...[]byte) [][]byte {
	out := slices.Clone(ders)
	slices.SortFunc(out, func(a, b []byte) int { return strings.Compare(string(a), string(b)) })
	return out
}

func ctbVolume(sources ...*corev1.ClusterTrustBundleProjection) corev1.Volume {
	p := &corev1.ProjectedVolumeSource{}
	for _, s := range sources {
		p.Sources = append(p.Sources, corev1.VolumeProjection{ClusterTrustBundle: s})
	}
	return corev1.Volume{Name: "v", VolumeSource: corev1.VolumeSource{Projected: p}}
}

// TestTrustBundlePayload assembles clusterTrustBundle projections: by
// name, by signer and labels (a nil selector matching none, an empty one
// all of the signer's), each certificate once in DER order, optional
// sources that select nothing as empty files, others as errors.
func TestTrustBundlePayload(t *testing.T) {
	m := testManager(t, Config{})
	pod := newPod("p", "")
	pemA, derA := testCA(t, "a")
	pemB, derB := testCA(t, "b")
	pemC, derC := testCA(t, "c")
	pemD, derD := testCA(t, "d")
	objs := Objects{ClusterTrustBundles: map[string]*certificatesv1.ClusterTrustBundle{}}
	for _, b := range []*certificatesv1.ClusterTrustBundle{
		trustBundle("plain", "", nil, pemC, pemA, pemC),
		trustBundle("ex.com:s:1", "ex.com/s", map[string]string{"alive": "true"}, pemA, pemB),
		trustBundle("ex.com:s:2", "ex.com/s", map[string]string{"alive": "true"}, pemB, pemC),
		trustBundle("ex.com:s:3", "ex.com/s", map[string]string{"alive": "false"}, pemD),
		trustBundle("ex.com:t:1", "ex.com/t", map[string]string{"alive": "true"}, pemD),
	} {
		objs.ClusterTrustBundles[b.Name] = b
	}
	name := func(n string) *string { return &n }
	alive := &metav1.LabelSelector{MatchLabels: map[string]string{"alive": "true"}}
	tests := []struct {
		name string
		vol  corev1.Volume
		want map[string]string
		err  string
	}{
		{name: "by name, duplicates once, in order",
			vol:  ctbVolume(&corev1.ClusterTrustBundleProjection{Name: name("plain"), Path: "ca.pem"}),
			want: map[string]string{"ca.pem": pemOf(sortedDER(derA, derC)...) + " (-rw-r--r--)"}},
		{name: "by signer and labels, across bundles",
			vol:  ctbVolume(&corev1.ClusterTrustBundleProjection{SignerName: name("ex.com/s"), LabelSelector: alive, Path: "ca.pem"}),
			want: map[string]string{"ca.pem": pemOf(sortedDER(derA, derB, derC)...) + " (-rw-r--r--)"}},
		{name: "empty selector: all of the signer's",
			vol:  ctbVolume(&corev1.ClusterTrustBundleProjection{SignerName: name("ex.com/s"), LabelSelector: &metav1.LabelSelector{}, Path: "ca.pem"}),
			want: map[string]string{"ca.pem": pemOf(sortedDER(derA, derB, derC, derD)...) + " (-rw-r--r--)"}},
		{name: "two sources, default mode",
			vol: func() corev1.Volume {
				v := ctbVolume(&corev1.ClusterTrustBundleProjection{Name: name("ex.com:t:1"), Path: "t.pem"},
					&corev1.ClusterTrustBundleProjection{SignerName: name("ex.com/s"), Path: "dead/s.pem",
						LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"alive": "false"}}})
				v.Projected.DefaultMode = mode(0o440)
				return v
			}(),
			want: map[string]string{"t.pem": pemD + " (-r--r-----)", "dead/s.pem": pemD + " (-r--r-----)"}},
		{name: "missing name, optional",
			vol:  ctbVolume(&corev1.ClusterTrustBundleProjection{Name: name("absent"), Path: "ca.pem", Optional: ptr(true)}),
			want: map[string]string{"ca.pem": " (-rw-r--r--)"}},
		{name: "nil selector, optional: nothing selected",
			vol:  ctbVolume(&corev1.ClusterTrustBundleProjection{SignerName: name("ex.com/s"), Path: "ca.pem", Optional: ptr(true)}),
			want: map[string]string{"ca.pem": " (-rw-r--r--)"}},
		{name: "missing name",
			vol: ctbVolume(&corev1.ClusterTrustBundleProjection{Name: name("absent"), Path: "ca.pem", Optional: ptr(false)}),
			err: `clustertrustbundle "absent" not found`},
		{name: "nil selector",
			vol: ctbVolume(&corev1.ClusterTrustBundleProjection{SignerName: name("ex.com/s"), Path: "ca.pem"}),
			err: `combination of signerName "ex.com/s" and labelSelector matched zero ClusterTrustBundles`},
		{name: "selector matching nothing of the signer",
			vol: ctbVolume(&corev1.ClusterTrustBundleProjection{SignerName: name("ex.com/u"), LabelSelector: alive, Path: "ca.pem"}),
			err: `combination of signerName "ex.com/u" and labelSelector matched zero ClusterTrustBundles`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := m.volumePayload(context.Background(), pod, &tc.vol, &objs)
			if tc.err != "" {
				if !errors.Is(err, errMissing) || err.Error() != tc.err {
					t.Errorf("volumePayload = %v, want %q wrapping errMissing", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, payloadStrings(got)); d != "" {
				t.Errorf("payload (-want +got):\n%s", d)
			}
		})
	}
}

// TestTrustBundleVolume runs a pod whose projected volume needs a bundle
// of a signer the node has none of: nothing starts and FailedMount is
// recorded; the pod starts once a matching bundle arrives, and the file
// follows a bundle's changes.
func TestTrustBundleVolume(t *testing.T) {
	pod := newPod("ctb", "")
	signer := "ex.com/s"
	pod.Spec.Volumes = []corev1.Volume{ctbVolume(&corev1.ClusterTrustBundleProjection{SignerName: &signer,
		LabelSelector: &metav1.LabelSelector{}, Path: "ca.pem"})}
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "v", MountPath: "/etc/ca"}}
	h := start(t, Config{}, pod)
	h.m.SetObjects(Objects{ClusterTrustBundles: map[string]*certificatesv1.ClusterTrustBundle{
		"other": trustBundle("other", "ex.com/other", nil, ""),
	}})
	waitFor(t, wait, "a FailedMount event", func() bool { return len(h.rep.eventsOf(pod.UID)) > 0 })
	want := []string{` Warning FailedMount: MountVolume.SetUp failed for volume "v" : ` +
		`combination of signerName "ex.com/s" and labelSelector matched zero ClusterTrustBundles`}
	if d := cmp.Diff(want, h.rep.eventsOf(pod.UID)); d != "" {
		t.Errorf("events (-want +got):\n%s", d)
	}
	if h.fake.PodSpec(string(pod.UID)) != nil {
		t.Error("the sandbox was created before the volume was set up")
	}

	pemA, _ := testCA(t, "a")
	h.m.SetObjects(Objects{ClusterTrustBundles: map[string]*certificatesv1.ClusterTrustBundle{
		"ex.com:s:1": trustBundle("ex.com:s:1", signer, nil, pemA),
	}})
	h.rep.waitStatus(t, pod.UID, wait, "Running", phaseIs(corev1.PodRunning))
	file := filepath.Join(h.m.volumeDir(pod.UID, "v"), "ca.pem")
	if got := readFile(file); got != pemA {
		t.Errorf("ca.pem = %q, want the bundle's certificate", got)
	}

	pemB, _ := testCA(t, "b")
	h.m.SetObjects(Objects{ClusterTrustBundles: map[string]*certificatesv1.ClusterTrustBundle{
		"ex.com:s:1": trustBundle("ex.com:s:1", signer, nil, pemB),
	}})
	waitFor(t, wait, "the changed bundle in ca.pem", func() bool { return readFile(file) == pemB })

	h.m.SetPods(nil)
	podDir := filepath.Join(h.m.podVolumesDir(), string(pod.UID))
	waitFor(t, wait, "volumes removed", func() bool { _, err := os.Stat(podDir); return os.IsNotExist(err) })
}
