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

package verifiertest_test

import (
	"bufio"
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"

	"k8s.io/client-go/kubernetes"

	"github.com/keyward/keyward/test/testenv"
	"github.com/keyward/keyward/test/verifiertest"
)

// This package's API server keeps its watch cache, as a cluster's does, so
// client-go streams the verifier's initial list (WatchList) rather than
// listing: the path on which the verifier trims Secrets as they arrive.
var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

func TestEveryKeyThroughAStreamedList(t *testing.T) {
	env.Need(t)
	before := watchLists(t)
	verifiertest.EveryKeyThroughListAndWatch(t, env)
	if after := watchLists(t); after <= before {
		t.Fatalf("the API server served no streamed list of Secrets (apiserver_watch_list_duration_seconds_count: %v before, %v after): the verifier listed instead, and this test did not cover what it is for", before, after)
	}
}

// watchLists returns how many streamed lists of Secrets the API server has
// completed, from its own metrics.
func watchLists(t *testing.T) float64 {
	t.Helper()
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	body, err := cs.RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "apiserver_watch_list_duration_seconds_count{") && strings.Contains(l, `resource="secrets"`) {
			v, _ := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
			n += v
		}
	}
	return n
}
