package store

import "sort"

// prefixIndex finds the watchers whose prefix matches a key without looking
// at the others: watchers are grouped by prefix, and a key is looked up
// once per distinct prefix length, which stays small in practice
// ("/registry/pods/", "/registry/pods/default/", ...).
type prefixIndex struct {
	sets map[string]map[*watcher]struct{}
	lens []int       // distinct prefix lengths in use, ascending
	uses map[int]int // watchers per prefix length
}

func newPrefixIndex() prefixIndex {
	return prefixIndex{
		sets: make(map[string]map[*watcher]struct{}),
		uses: make(map[int]int),
	}
}

func (x *prefixIndex) add(w *watcher) {
	set := x.sets[w.prefix]
	if set == nil {
		set = make(map[*watcher]struct{})
		x.sets[w.prefix] = set
	}
	set[w] = struct{}{}
	l := len(w.prefix)
	if x.uses[l]++; x.uses[l] == 1 {
		i := sort.SearchInts(x.lens, l)
		x.lens = append(x.lens, 0)
		copy(x.lens[i+1:], x.lens[i:])
		x.lens[i] = l
	}
}

func (x *prefixIndex) remove(w *watcher) {
	set := x.sets[w.prefix]
	if _, ok := set[w]; !ok {
		return
	}
	delete(set, w)
	if len(set) == 0 {
		delete(x.sets, w.prefix)
	}
	l := len(w.prefix)
	if x.uses[l]--; x.uses[l] == 0 {
		delete(x.uses, l)
		i := sort.SearchInts(x.lens, l)
		x.lens = append(x.lens[:i], x.lens[i+1:]...)
	}
}
