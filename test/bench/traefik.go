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
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keyward/keyward/internal/keys"
	"github.com/keyward/keyward/test/e2e"
	"github.com/keyward/keyward/test/testgen"
)

// runTraefik measures T1: a real Traefik (hack/traefik.sh) whose
// forwardAuth middleware, as docs/traefik.md writes it, asks the verifier
// holding the benchmark's keys, against the same Traefik asking a server
// that answers 200 and does nothing else; and, to read the difference,
// Traefik asking that server run with the verifier's http.Server settings,
// and Traefik with no middleware. All proxy to one upstream process.
func (b *bench) runTraefik(ctx context.Context) error {
	valid, held, err := b.extraKey(ctx, traefikKeyIndex(b.opts.keys))
	if err != nil {
		return err
	}
	var ver verifierInfo
	vc, err := startChild(cmdVerifier, &ver, cmdVerifier, "-kubeconfig", b.cluster.kubeconfig, "-namespace", benchOps)
	if err != nil {
		return err
	}
	defer vc.stop()
	if err := waitKeys(ver.Probe, held); err != nil {
		return fmt.Errorf("T1: %w", err)
	}
	ver.pid = vc.cmd.Process.Pid
	var floor floorInfo
	fc, err := startChild(cmdFloor, &floor, cmdFloor, "-key-id", valid.ID(), "-namespace", benchTenant)
	if err != nil {
		return err
	}
	defer fc.stop()
	floor.pid = fc.cmd.Process.Pid
	var timed floorInfo
	tc, err := startChild("floor with the verifier's timeouts", &timed, cmdFloor, "-key-id", valid.ID(), "-namespace", benchTenant, "-verifier-timeouts")
	if err != nil {
		return err
	}
	defer tc.stop()
	timed.pid = tc.cmd.Process.Pid
	var up floorInfo
	uc, err := startChild("upstream", &up, cmdFloor)
	if err != nil {
		return err
	}
	defer uc.stop()

	documented, err := e2e.DocumentedForwardAuth()
	if err != nil {
		return err
	}
	configs := []struct {
		name string
		fa   *e2e.ForwardAuth
		pid  int
	}{
		{"Traefik → do-nothing auth server", documented.WithAddress("http://" + floor.Auth + verifyPath), floor.pid},
		{"Traefik → verifier", documented.WithAddress("http://" + ver.Addr + verifyPath), ver.pid},
		{"Traefik → do-nothing auth server with the verifier's server timeouts", documented.WithAddress("http://" + timed.Auth + verifyPath), timed.pid},
		{"Traefik alone", nil, 0},
	}
	base := filepath.Join(b.dir, "traefik")
	_ = os.RemoveAll(base)
	req := httpRequest("api.example.com", "/v1/things/42?page=2", "Authorization", "Bearer "+valid.Plaintext())
	names := make([]string, len(configs))
	specs := make([]loadSpec, len(configs))
	for i, c := range configs {
		dir := filepath.Join(base, strconv.Itoa(i))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		tr, err := e2e.StartTraefikProcess(dir, e2e.TraefikOptions{ForwardAuth: c.fa, Upstream: "http://" + up.Upstream})
		if err != nil {
			return err
		}
		defer tr.Stop()
		addr := strings.TrimPrefix(tr.URL, "http://")
		if err := answersOK(addr, req); err != nil {
			return fmt.Errorf("T1, %s: %w\n%s", c.name, err, tr.Log())
		}
		names[i], specs[i] = c.name, b.spec(addr, req, c.pid)
	}
	s, err := b.alternate("T1", names, specs...)
	if err != nil {
		return err
	}
	d := t1Data{
		floor: s.median(0), verifier: s.median(1), timed: s.median(2), alone: s.median(3),
		traefik: e2e.TraefikVersion(), keys: held, opts: b.opts, rounds: s.details(),
	}
	r := b.add(d.row(b.command("T1")))
	if !strings.HasPrefix(r.Met, "met") {
		b.profileMissed(r, ver, specs[1], "t1", &floor, specs[0])
	}
	return nil
}

// traefikKeyIndex numbers T1's own valid key after every key
// loadHashedSecrets makes (and apart from G1's, grpcKeyIndex); its
// application (index mod 100) is app-000, as the floor answers.
func traefikKeyIndex(n int) int { return n + 100 }

// extraKey makes sure the benchmark's hashed Secrets are in benchOps
// (loading them when the verifier rows did not run) and adds one more,
// numbered index, whose key it returns with the number of keys held.
func (b *bench) extraKey(ctx context.Context, index int) (keys.Key, int, error) {
	c := b.cluster
	if err := c.client.Create(ctx, testgen.KeyGroup(benchTenant, benchGroup)); err != nil && !apierrors.IsAlreadyExists(err) {
		return keys.Key{}, 0, err
	}
	list, err := c.clientset.CoreV1().Secrets(benchOps).List(ctx, metav1.ListOptions{Limit: 1})
	if err != nil {
		return keys.Key{}, 0, err
	}
	held := len(list.Items)
	if list.RemainingItemCount != nil {
		held += int(*list.RemainingItemCount)
	}
	if held == 0 {
		logf("loading %d hashed Secrets", b.opts.keys)
		hk, err := c.loadHashedSecrets(ctx, benchOps, benchTenant, benchGroup, b.opts.keys, b.opts.viaAPI)
		if err != nil {
			return keys.Key{}, 0, err
		}
		held = hk.Created
	}
	k, err := keys.Generate("kt")
	if err != nil {
		return k, 0, err
	}
	_, err = c.clientset.CoreV1().Secrets(benchOps).Create(ctx, hashedSecret(benchOps, benchTenant, benchGroup, index, k), metav1.CreateOptions{})
	return k, held + 1, err
}

// waitKeys waits until the verifier whose probe port is probe holds want
// keys. It may start with fewer: its first list is served from the API
// server's watch cache, which can still be taking in Secrets put straight
// into etcd; the rest then arrive as watch events.
func waitKeys(probe string, want int) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		n, err := metricValue("http://"+probe+"/metrics", "keyward_verifier_keys")
		if err == nil && int(n) == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the verifier holds %.0f keys after 2 minutes, want %d (%v)", n, want, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// answersOK sends req once to addr and checks that the answer is 200.
func answersOK(addr string, req []byte) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(req); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var body bytes.Buffer
		_, _ = body.ReadFrom(resp.Body)
		return fmt.Errorf("%s, X-Auth-Reason %q: %s", resp.Status, resp.Header.Get("X-Auth-Reason"), body.String())
	}
	return nil
}
