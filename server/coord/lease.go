package coord

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// keepLease grants an etcd lease of ttl seconds and renews it until
// release, which revokes it so that the keys it holds go at once. acks
// closes when etcd lets the lease expire.
func keepLease(ctx context.Context, cli *clientv3.Client, ttl int64) (lease clientv3.LeaseID, acks <-chan *clientv3.LeaseKeepAliveResponse, release func(), err error) {
	granted, err := cli.Grant(ctx, ttl)
	if err != nil {
		return 0, nil, nil, err
	}
	kctx, cancel := context.WithCancel(ctx)
	release = func() {
		cancel()
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		cli.Revoke(rctx, granted.ID)
		rcancel()
	}
	if acks, err = cli.KeepAlive(kctx, granted.ID); err != nil {
		release()
		return 0, nil, nil, err
	}
	return granted.ID, acks, release, nil
}
