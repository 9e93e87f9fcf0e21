/*
Copyright 2026 The keyward Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package main

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward/keyward/internal/keys"
)

// writeCost is what writing n hashed Secrets one way cost.
type writeCost struct {
	how  string
	took time.Duration
	cpu  map[string]time.Duration
}

// hashedWriteCosts writes n hashed Secrets two ways with the manager's
// client (controller-runtime's, which sends Secrets as protobuf; an apply
// is sent as JSON), 32 at a time, alternating twice: by server-side apply
// (what the manager did before) and by create. The CPU of the bench
// process, kube-apiserver and etcd is taken around each.
func (b *bench) hashedWriteCosts(ctx context.Context, n int) ([]writeCost, error) {
	const ns = c1FloorNS
	ks := make([]keys.Key, n)
	for i := range ks {
		k, err := keys.Generate("kt")
		if err != nil {
			return nil, err
		}
		ks[i] = k
	}
	c := b.cluster.client
	secret := func(run string, i int) *corev1.Secret {
		s := hashedSecret(ns, c1NS, "things", i, ks[i])
		s.Name += "-" + run
		return s
	}
	ways := []struct {
		how   string
		write func(ctx context.Context, run string, i int) error
	}{
		{"server-side apply", func(ctx context.Context, run string, i int) error {
			s := secret(run, i)
			ac := corev1ac.Secret(s.Name, s.Namespace).WithLabels(s.Labels).WithAnnotations(s.Annotations).WithType(s.Type).WithData(s.Data)
			return c.Apply(ctx, ac, client.FieldOwner("keyward-manager"), client.ForceOwnership)
		}},
		{"create", func(ctx context.Context, run string, i int) error {
			return c.Create(ctx, secret(run, i), client.FieldOwner("keyward-manager"))
		}},
	}
	var out []writeCost
	for round := range 2 {
		for _, w := range ways {
			run := fmt.Sprintf("w%d-%d", round, len(out))
			before := processCPU()
			start := time.Now()
			if err := createAll(ctx, n, func(ctx context.Context, i int) error { return w.write(ctx, run, i) }); err != nil {
				return nil, fmt.Errorf("%s: %w", w.how, err)
			}
			out = append(out, writeCost{how: w.how, took: time.Since(start), cpu: cpuDelta(before, processCPU())})
		}
	}
	return out, nil
}

// writeCostNote renders hashedWriteCosts' runs: CPU per Secret each way.
func writeCostNote(costs []writeCost, n int) string {
	s := fmt.Sprintf("Server-side apply against create, for the hashed Secret of each key (%s Secrets each way, with the manager's kind of client (controller-runtime's: protobuf for Secrets), %d at a time, alternating, twice):", thousands(n), createConns)
	for _, c := range costs {
		s += fmt.Sprintf(" %s %s, %s per Secret (%s);", c.how, fmtDur(c.took), fmtDur(cpuPerKey(c.cpu, n)), fmtCPU(c.cpu))
	}
	return s
}
