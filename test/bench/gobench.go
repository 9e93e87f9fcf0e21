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
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// v3Args are the arguments of the go test that V3 runs and parses.
var v3Args = []string{"test", "-run=^$", "-bench=BenchmarkVerify$|BenchmarkDigestFloor|BenchmarkServeHTTP", "-benchmem", "-count=5", "./verifier/"}

// goBenchmark is one parsed benchmark line.
type goBenchmark struct {
	nsPerOp     []float64
	allocsPerOp []float64
	bytesPerOp  []float64
}

// runV3 runs the verifier's Go benchmarks: one verification of a valid key
// among 100,000 against SHA-256 of the key alone.
func (b *bench) runV3(ctx context.Context) error {
	logf("V3: go %s", strings.Join(v3Args, " "))
	cmd := exec.CommandContext(ctx, "go", v3Args...) // #nosec G204 -- fixed arguments
	cmd.Dir = b.root
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("V3: go test: %w\n%s", err, out)
	}
	_ = os.WriteFile(filepath.Join(b.dir, "v3-gotest.txt"), out, 0o600)
	res := parseGoBench(out)
	verify, floor, serve, par := res["BenchmarkVerify"], res["BenchmarkDigestFloor"], res["BenchmarkServeHTTP"], res["BenchmarkServeHTTPParallel"]
	if verify == nil || floor == nil || serve == nil || par == nil {
		return fmt.Errorf("V3: benchmarks missing from the output:\n%s", out)
	}
	b.add(v3Data{verify: verify, floor: floor, serve: serve, par: par}.row())
	return nil
}

// parseGoBench reads `go test -bench` output into per-benchmark samples,
// with the -GOMAXPROCS suffix dropped from the names.
func parseGoBench(out []byte) map[string]*goBenchmark {
	res := map[string]*goBenchmark{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			name = name[:i]
		}
		g := res[name]
		if g == nil {
			g = &goBenchmark{}
			res[name] = g
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				g.nsPerOp = append(g.nsPerOp, v)
			case "allocs/op":
				g.allocsPerOp = append(g.allocsPerOp, v)
			case "B/op":
				g.bytesPerOp = append(g.bytesPerOp, v)
			}
		}
	}
	return res
}

func quoteArgs(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, "^$|*?") {
			a = "'" + a + "'"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}
