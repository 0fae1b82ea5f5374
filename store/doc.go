// Package store keeps minik's objects: a revisioned key-value store with a
// watch log, durable on acknowledgement.
//
// # Contract
//
// Store is the interface every backend implements (bbolt here, etcd later);
// storetest.Suite checks a backend against it.
package store
