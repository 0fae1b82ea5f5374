package main

import (
	bolt "go.etcd.io/bbolt"
)

// group is the baseline group commit: one goroutine takes every put that
// is waiting, writes them in one transaction and answers each after the
// commit. It does nothing else (no revisions, no log, no watchers).
type group struct {
	db    *bolt.DB
	reqc  chan *groupPut
	donec chan struct{}
}

type groupPut struct {
	key, value []byte
	errc       chan error
}

func openGroup(path string) (putter, error) {
	db, err := openBolt(path)
	if err != nil {
		return nil, err
	}
	g := &group{db: db, reqc: make(chan *groupPut, 1024), donec: make(chan struct{})}
	go g.run()
	return g, nil
}

func (g *group) put(key string, value []byte) error {
	p := &groupPut{key: []byte(key), value: value, errc: make(chan error, 1)}
	g.reqc <- p
	return <-p.errc
}

func (g *group) run() {
	defer close(g.donec)
	var batch []*groupPut
	for p := range g.reqc {
		batch = append(batch[:0], p)
	drain:
		for {
			select {
			case p, ok := <-g.reqc:
				if !ok {
					break drain
				}
				batch = append(batch, p)
			default:
				break drain
			}
		}
		err := g.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucket)
			for _, p := range batch {
				if err := b.Put(p.key, p.value); err != nil {
					return err
				}
			}
			return nil
		})
		for _, p := range batch {
			p.errc <- err
		}
	}
}

func (g *group) close() error {
	close(g.reqc)
	<-g.donec
	return g.db.Close()
}
