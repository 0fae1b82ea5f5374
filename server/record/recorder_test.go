package record

import (
	"math"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Counts reported by nodes add up without wrapping around.
func TestAddOccurrencesSaturates(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	ev := &corev1.Event{Count: math.MaxInt32 - 1, LastTimestamp: t0}
	addOccurrences(ev, 5, metav1.NewTime(t0.Add(time.Minute)))
	if ev.Count != math.MaxInt32 || !ev.LastTimestamp.Equal(&metav1.Time{Time: t0.Add(time.Minute)}) {
		t.Errorf("count %d last %v, want %d at %v", ev.Count, ev.LastTimestamp, math.MaxInt32, t0.Add(time.Minute))
	}
	addOccurrences(ev, 3, t0)
	if ev.Count != math.MaxInt32 || !ev.LastTimestamp.Equal(&metav1.Time{Time: t0.Add(time.Minute)}) {
		t.Errorf("count %d last %v after an older repeat, want %d and the later time kept", ev.Count, ev.LastTimestamp, math.MaxInt32)
	}
}
