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
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/keyward/keyward/internal/keys"
)

// Creating 100,000 Secrets through the API server costs it about 1.7 ms of
// CPU each on this machine class: minutes, most of the benchmark's budget.
// Past a first batch created through the API, the rest are therefore put
// straight into the control plane's etcd, in the API server's own storage
// encoding (protobuf), modelled on a Secret the API server stored itself.
// The API server's watch cache picks them up from etcd like any other write,
// and the verifier lists them through the API server as it would in a
// cluster.

// etcdStore writes Secrets to the etcd this process started, through its
// JSON gateway (plain HTTP on loopback, as envtest runs it).
type etcdStore struct {
	url    string
	client *http.Client
	prefix string // the API server's --etcd-prefix, "/registry"
}

// findEtcd finds the client URL of the etcd this process started.
func findEtcd() (*etcdStore, error) {
	for pid, name := range children() {
		if name != "etcd" {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline")) // #nosec G304 -- /proc
		if err != nil {
			continue
		}
		for _, arg := range strings.Split(string(cmdline), "\x00") {
			if v, ok := strings.CutPrefix(arg, "--listen-client-urls="); ok {
				u, err := url.Parse(strings.Split(v, ",")[0])
				if err != nil {
					return nil, err
				}
				if err := checkLoopback(u.Host); err != nil {
					return nil, err
				}
				return &etcdStore{url: u.String(), client: &http.Client{Timeout: 30 * time.Second}, prefix: "/registry"}, nil
			}
		}
	}
	return nil, errors.New("etcd: no etcd child process found")
}

func (s *etcdStore) post(ctx context.Context, path string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("etcd %s: %s: %s", path, resp.Status, data)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

func (s *etcdStore) secretKey(ns, name string) string {
	return s.prefix + "/secrets/" + ns + "/" + name
}

// get reads one stored value.
func (s *etcdStore) get(ctx context.Context, key string) ([]byte, error) {
	var out struct {
		Kvs []struct {
			Value string `json:"value"`
		} `json:"kvs"`
	}
	if err := s.post(ctx, "/v3/kv/range", map[string]string{"key": base64.StdEncoding.EncodeToString([]byte(key))}, &out); err != nil {
		return nil, err
	}
	if len(out.Kvs) != 1 {
		return nil, fmt.Errorf("etcd: %s not found", key)
	}
	return base64.StdEncoding.DecodeString(out.Kvs[0].Value)
}

// putAll writes key/value pairs in one transaction.
func (s *etcdStore) putAll(ctx context.Context, kvs [][2][]byte) error {
	type put struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	}
	type op struct {
		RequestPut put `json:"requestPut"`
	}
	ops := make([]op, len(kvs))
	for i, kv := range kvs {
		ops[i] = op{RequestPut: put{Key: base64.StdEncoding.EncodeToString(kv[0]), Value: base64.StdEncoding.EncodeToString(kv[1])}}
	}
	return s.post(ctx, "/v3/kv/txn", map[string]any{"success": ops}, nil)
}

// storageCodec encodes and decodes Secrets as the API server stores them.
type storageCodec struct {
	enc runtime.Encoder
	ser *protobuf.Serializer
}

func newStorageCodec() *storageCodec {
	ser := protobuf.NewSerializer(scheme.Scheme, scheme.Scheme)
	return &storageCodec{ser: ser, enc: scheme.Codecs.EncoderForVersion(ser, corev1.SchemeGroupVersion)}
}

func (c *storageCodec) decode(b []byte) (*corev1.Secret, error) {
	obj, _, err := c.ser.Decode(b, nil, &corev1.Secret{})
	if err != nil {
		return nil, err
	}
	s, ok := obj.(*corev1.Secret)
	if !ok {
		return nil, fmt.Errorf("etcd: stored object is a %T", obj)
	}
	return s, nil
}

func (c *storageCodec) encode(s *corev1.Secret) ([]byte, error) {
	var b bytes.Buffer
	err := c.enc.Encode(s, &b)
	return b.Bytes(), err
}

// putHashedSecrets stores hashed Secrets [from, to) of tenant/group in ops,
// each a copy of model (a hashed Secret the API server stored: its
// managedFields and everything else the API server adds) with its own name,
// UID, record and labels.
func (c *cluster) putHashedSecrets(ctx context.Context, model *corev1.Secret, ops, tenant, group string, from, to int, valid int, out *hashedKeys) error {
	store, err := findEtcd()
	if err != nil {
		return err
	}
	codec := newStorageCodec()
	raw, err := store.get(ctx, store.secretKey(model.Namespace, model.Name))
	if err != nil {
		return err
	}
	stored, err := codec.decode(raw)
	if err != nil {
		return err
	}
	const batch, workers = 128, 4 // etcd's --max-txn-ops default is 128
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	next.Store(int64(from))
	now := metav1.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				start := int(next.Add(batch) - batch)
				if start >= to {
					return
				}
				kvs := make([][2][]byte, 0, batch)
				for i := start; i < min(start+batch, to); i++ {
					k, err := keys.Generate("kt")
					if err != nil {
						mu.Lock()
						first = err
						mu.Unlock()
						return
					}
					want := hashedSecret(ops, tenant, group, i, k)
					s := stored.DeepCopy()
					s.Name, s.Labels, s.Annotations, s.Data = want.Name, want.Labels, want.Annotations, want.Data
					s.UID = types.UID(strings.TrimPrefix(want.Name, "apikey-"))
					s.CreationTimestamp = now
					b, err := codec.encode(s)
					if err != nil {
						mu.Lock()
						first = err
						mu.Unlock()
						return
					}
					kvs = append(kvs, [2][]byte{[]byte(store.secretKey(ops, s.Name)), b})
					if i == valid {
						mu.Lock()
						out.Valid, out.ValidID = k.Plaintext(), k.ID()
						mu.Unlock()
					}
				}
				if err := store.putAll(ctx, kvs); err != nil {
					mu.Lock()
					first = err
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// etcdKey is the key field of etcd's JSON requests.
const etcdKey = "key"

// etcdStatus is what etcd's maintenance status says of its database
// (int64s come as strings from the JSON gateway).
type etcdStatus struct {
	Header struct {
		Revision int64 `json:"revision,string"`
	} `json:"header"`
	Version     string `json:"version"`
	DBSize      int64  `json:"dbSize,string"`
	DBSizeInUse int64  `json:"dbSizeInUse,string"`
}

func (s etcdStatus) text() string {
	return fmt.Sprintf("revision %d, database %s, %s in use (%d bytes)", s.Header.Revision, mib(float64(s.DBSize)), mib(float64(s.DBSizeInUse)), s.DBSizeInUse)
}

// revision is etcd's current revision.
func (s *etcdStore) revision(ctx context.Context) (int64, error) {
	var out struct {
		Header struct {
			Revision int64 `json:"revision,string"`
		} `json:"header"`
	}
	err := s.post(ctx, "/v3/kv/range", map[string]any{etcdKey: base64.StdEncoding.EncodeToString([]byte(s.prefix)), "count_only": true}, &out)
	return out.Header.Revision, err
}

// compact drops every revision before rev, physically (the call returns
// once the compaction is applied to the backend).
func (s *etcdStore) compact(ctx context.Context, rev int64) error {
	return s.post(ctx, "/v3/kv/compaction", map[string]any{"revision": strconv.FormatInt(rev, 10), "physical": true}, nil)
}

// defragment gives the space freed by compaction back, so that dbSize
// is what is in use.
func (s *etcdStore) defragment(ctx context.Context) error {
	slow := &etcdStore{url: s.url, prefix: s.prefix, client: &http.Client{Timeout: 10 * time.Minute}}
	return slow.post(ctx, "/v3/maintenance/defragment", map[string]any{}, nil)
}

// status reads etcd's maintenance status.
func (s *etcdStore) status(ctx context.Context) (etcdStatus, error) {
	var out etcdStatus
	err := s.post(ctx, "/v3/maintenance/status", map[string]any{}, &out)
	return out, err
}

// prefixSize is the keys under a prefix and the bytes of their values.
type prefixSize struct {
	count int
	bytes int64
}

// prefixEnd is the end of the range of keys that start with prefix.
func prefixEnd(prefix string) string {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return "\x00"
}

// prefixSize reads the values under prefix, 1000 at a time, and sums their
// sizes.
func (s *etcdStore) prefixSize(ctx context.Context, prefix string) (prefixSize, error) {
	var ps prefixSize
	end := base64.StdEncoding.EncodeToString([]byte(prefixEnd(prefix)))
	key := prefix
	for {
		var out struct {
			Kvs []struct {
				Key   string `json:"key"`
				Value string `json:"value"`
			} `json:"kvs"`
			More bool `json:"more"`
		}
		req := map[string]any{etcdKey: base64.StdEncoding.EncodeToString([]byte(key)), "range_end": end, "limit": 1000}
		if err := s.post(ctx, "/v3/kv/range", req, &out); err != nil {
			return ps, err
		}
		for _, kv := range out.Kvs {
			ps.count++
			ps.bytes += int64(base64.StdEncoding.DecodedLen(len(kv.Value)))
			if pad := strings.Count(kv.Value[max(len(kv.Value)-2, 0):], "="); pad > 0 {
				ps.bytes -= int64(pad)
			}
		}
		if !out.More || len(out.Kvs) == 0 {
			return ps, nil
		}
		last, err := base64.StdEncoding.DecodeString(out.Kvs[len(out.Kvs)-1].Key)
		if err != nil {
			return ps, err
		}
		key = string(last) + "\x00"
	}
}
