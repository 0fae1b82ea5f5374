package controllers

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

func TestPodsToClaim(t *testing.T) {
	yes := true
	owned := func(name, ns string, uid types.UID) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
		if uid != "" {
			p.OwnerReferences = []metav1.OwnerReference{{UID: uid, Controller: &yes, Kind: "ReplicaSet", Name: "x"}}
		}
		return p
	}
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{byController: controllerKey})
	for _, p := range []*corev1.Pod{
		owned("mine", "a", "rs-1"), owned("theirs", "a", "rs-2"), owned("orphan", "a", ""),
		owned("orphan-elsewhere", "b", ""), owned("mine-elsewhere", "b", "rs-1"),
	} {
		if err := idx.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	got, err := podsToClaim(idx, "a", "rs-1")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range got {
		names = append(names, p.Name)
	}
	slices.Sort(names)
	if want := []string{"mine", "orphan"}; !slices.Equal(names, want) {
		t.Errorf("podsToClaim = %v, want %v", names, want)
	}
}
