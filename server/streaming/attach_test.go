package streaming_test

import (
	"bytes"
	"context"
	"io"
	"net/url"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/minik-dev/minik/agent/pods"
)

// attachStreamer is a node whose containers echo attached stdin
// upper-cased, then exit.
type attachStreamer struct {
	fakeStreamer
}

func (*attachStreamer) Attach(ctx context.Context, pod types.NamespacedName, c string, s pods.ExecStreams) error {
	io.WriteString(s.Stdout, "attached to "+pod.String()+"/"+c+"\n")
	if s.Stdin != nil {
		in, err := io.ReadAll(s.Stdin)
		if err != nil {
			return err
		}
		s.Stdout.Write(bytes.ToUpper(in))
	}
	if s.Stderr != nil {
		io.WriteString(s.Stderr, "bye")
	}
	return nil
}

func TestAttachStreams(t *testing.T) {
	h := newHarness(t)
	h.startAgent("n1", &attachStreamer{})
	h.addPod("p", "n1", "c")
	q := url.Values{"stdin": {"true"}, "stdout": {"true"}, "stderr": {"true"}, "container": {"c"}}
	for name, e := range h.executors(h.url("p", "attach", q)) {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := stream(t, e, remotecommand.StreamOptions{Stdin: strings.NewReader("hello\n"), Stdout: &stdout, Stderr: &stderr})
			if err != nil {
				t.Fatalf("Stream = %v, want nil", err)
			}
			if want := "attached to default/p/c\nHELLO\n"; stdout.String() != want || stderr.String() != "bye" {
				t.Errorf("stdout, stderr = %q, %q, want %q, %q", stdout.String(), stderr.String(), want, "bye")
			}
		})
	}
}
