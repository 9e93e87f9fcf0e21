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

package grafana

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/promql/parser"
)

// The dashboard, as far as the tests read it.
type dashboard struct {
	SchemaVersion int `json:"schemaVersion"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Definition string          `json:"definition"`
	Datasource *datasource     `json:"datasource"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	Targets    []target    `json:"targets"`
	Panels     []panel     `json:"panels"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type target struct {
	RefID        string      `json:"refId"`
	Expr         string      `json:"expr"`
	LegendFormat string      `json:"legendFormat"`
	Datasource   *datasource `json:"datasource"`
}

// query is one PromQL expression of the dashboard: a panel's target, or a
// template variable's label_values.
type query struct {
	where  string // panel "title" target A, or variable "name"
	expr   string // with Grafana's variables substituted
	legend string
	// label is the label a variable's label_values lists ("": a panel).
	label string
}

func load(t *testing.T) dashboard {
	t.Helper()
	var d dashboard
	if err := json.Unmarshal(Dashboard, &d); err != nil {
		t.Fatalf("keyward-dashboard.json: %v", err)
	}
	return d
}

// Grafana's variables, replaced by values PromQL parses. A $ left over is a
// variable the test does not know.
var substitutions = strings.NewReplacer(
	"$__rate_interval", "5m", "$__interval", "1m", "$__range", "6h",
	"${namespace}", "ns", "$namespace", "ns", "${keygroup}", "group", "$keygroup", "group",
)

var labelValues = regexp.MustCompile(`^label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)

// queries lists every expression of d, or an error for one that cannot be
// read.
func queries(d dashboard) ([]query, []string) {
	var out []query
	var problems []string
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				where := fmt.Sprintf("panel %q target %s", p.Title, tg.RefID)
				expr := substitutions.Replace(tg.Expr)
				if strings.Contains(expr, "$") {
					problems = append(problems, fmt.Sprintf("%s: unknown variable in %s", where, tg.Expr))
					continue
				}
				out = append(out, query{where: where, expr: expr, legend: tg.LegendFormat})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		where := fmt.Sprintf("variable %q", v.Name)
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			if err := json.Unmarshal(v.Query, &q.Query); err != nil {
				problems = append(problems, fmt.Sprintf("%s: query: %v", where, err))
				continue
			}
		}
		m := labelValues.FindStringSubmatch(substitutions.Replace(q.Query))
		if m == nil {
			problems = append(problems, fmt.Sprintf("%s: want label_values(selector, label), got %q", where, q.Query))
			continue
		}
		out = append(out, query{where: where, expr: m[1], label: m[2]})
	}
	return out, problems
}

// family is what a metric family exports: its type and every label name
// seen on it (or declared, for one known only by its description).
type family struct {
	typ    dto.MetricType
	labels map[string]bool
	// described: no series yet, known from its collector's description
	// only (a counter vector nothing has incremented).
	described bool
}

// exported is every metric family exported, by name.
type exported map[string]*family

// addGathered adds the families gathered from g.
func (e exported) addGathered(g prometheus.Gatherer) error {
	mfs, err := g.Gather()
	if err != nil {
		return err
	}
	for _, mf := range mfs {
		f := e[mf.GetName()]
		if f == nil || f.described {
			f = &family{labels: map[string]bool{}}
			e[mf.GetName()] = f
		}
		f.typ = mf.GetType()
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				f.labels[l.GetName()] = true
			}
		}
	}
	return nil
}

var (
	descName     = regexp.MustCompile(`fqName: "([^"]*)"`)
	descConst    = regexp.MustCompile(`constLabels: \{([^}]*)\}`)
	descVariable = regexp.MustCompile(`variableLabels: \{([^}]*)\}`)
	descLabel    = regexp.MustCompile(`(?:^|,)(?:c\()?([a-zA-Z_][a-zA-Z0-9_]*)`)
)

// addDescribed adds the families c describes that have no series yet,
// with the labels their descriptions declare. Prometheus's Desc has no
// accessors: its String is read, and a description it cannot read fails
// the test rather than pass it.
func (e exported) addDescribed(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	var err error
	for d := range ch {
		s := d.String()
		name, cl, vl := descName.FindStringSubmatch(s), descConst.FindStringSubmatch(s), descVariable.FindStringSubmatch(s)
		if name == nil || cl == nil || vl == nil {
			err = fmt.Errorf("cannot read the description %s", s)
			continue
		}
		if e[name[1]] != nil {
			continue
		}
		f := &family{labels: map[string]bool{}, described: true}
		for _, list := range []string{cl[1], vl[1]} {
			for _, m := range descLabel.FindAllStringSubmatch(list, -1) {
				f.labels[m[1]] = true
			}
		}
		e[name[1]] = f
	}
	return err
}

// scrapeLabels are added by Prometheus to every series it scrapes.
var scrapeLabels = []string{"instance", "job"}

// lookup finds the family a selector's name belongs to: itself, or the
// histogram or summary whose _bucket, _sum or _count it is. It returns the
// labels the series carry.
func (e exported) lookup(name string) (map[string]bool, bool) {
	if f := e[name]; f != nil {
		return f.labels, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		f := e[base]
		if f == nil || (f.typ != dto.MetricType_HISTOGRAM && f.typ != dto.MetricType_SUMMARY) || f.described {
			continue
		}
		labels := maps.Clone(f.labels)
		if suffix == "_bucket" {
			if f.typ != dto.MetricType_HISTOGRAM {
				continue
			}
			labels["le"] = true
		}
		return labels, true
	}
	return nil, false
}

// check returns a problem for every metric a query names that e lacks, and
// every label a query matches, groups by or shows in its legend that the
// metrics it reads do not carry.
func check(qs []query, e exported) []string {
	var problems []string
	for _, q := range qs {
		expr, err := parser.NewParser(parser.Options{}).ParseExpr(q.expr)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v in %s", q.where, err, q.expr))
			continue
		}
		c := checker{where: q.where, e: e}
		out := c.labels(expr)
		problems = append(problems, c.problems...)
		if q.label != "" && !out[q.label] {
			problems = append(problems, fmt.Sprintf("%s: label_values lists %q, which %s does not carry", q.where, q.label, q.expr))
		}
		for _, m := range legendLabel.FindAllStringSubmatch(q.legend, -1) {
			if out != nil && !out[m[1]] {
				problems = append(problems, fmt.Sprintf("%s: legend {{%s}}: the query's result has no label %q (it has %v)", q.where, m[1], m[1], sorted(out)))
			}
		}
	}
	return problems
}

var legendLabel = regexp.MustCompile(`\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)

type checker struct {
	where    string
	e        exported
	problems []string
}

func (c *checker) fail(format string, args ...any) {
	c.problems = append(c.problems, c.where+": "+fmt.Sprintf(format, args...))
}

// labels returns the labels the result of n carries, checking the
// selectors and groupings inside it on the way; nil when it reads a metric
// that does not exist (already reported).
func (c *checker) labels(n parser.Node) map[string]bool {
	switch n := n.(type) {
	case *parser.VectorSelector:
		return c.selector(n)
	case *parser.MatrixSelector:
		return c.labels(n.VectorSelector)
	case *parser.SubqueryExpr:
		return c.labels(n.Expr)
	case *parser.ParenExpr:
		return c.labels(n.Expr)
	case *parser.StepInvariantExpr:
		return c.labels(n.Expr)
	case *parser.UnaryExpr:
		return c.labels(n.Expr)
	case *parser.NumberLiteral, *parser.StringLiteral:
		return map[string]bool{}
	case *parser.AggregateExpr:
		if n.Param != nil {
			c.labels(n.Param)
		}
		in := c.labels(n.Expr)
		if n.Without {
			out := maps.Clone(in)
			for _, l := range n.Grouping {
				c.need(in, l, fmt.Sprintf("%s without", n.Op))
				delete(out, l)
			}
			return out
		}
		out := map[string]bool{}
		for _, l := range n.Grouping {
			c.need(in, l, fmt.Sprintf("%s by", n.Op))
			out[l] = true
		}
		return out
	case *parser.Call:
		var in map[string]bool
		vector := false
		for _, a := range n.Args {
			l := c.labels(a)
			if !vector && a.Type() != parser.ValueTypeScalar && a.Type() != parser.ValueTypeString {
				in, vector = l, true
			}
		}
		if !vector {
			return map[string]bool{} // time(), a scalar's function
		}
		if in == nil {
			return nil
		}
		if n.Func.Name == "histogram_quantile" {
			c.need(in, "le", "histogram_quantile")
			in = maps.Clone(in)
			delete(in, "le")
		}
		return in
	case *parser.BinaryExpr:
		lhs, rhs := c.labels(n.LHS), c.labels(n.RHS)
		if n.LHS.Type() == parser.ValueTypeScalar {
			return rhs
		}
		if n.RHS.Type() == parser.ValueTypeScalar {
			return lhs
		}
		vm := n.VectorMatching
		if vm == nil {
			return lhs
		}
		for _, l := range vm.MatchingLabels {
			if vm.On {
				c.need(lhs, l, "on (left)")
				c.need(rhs, l, "on (right)")
			}
		}
		if vm.Card == parser.CardOneToOne && vm.On && n.Op != parser.LAND && n.Op != parser.LUNLESS && n.Op != parser.LOR {
			out := map[string]bool{}
			for _, l := range vm.MatchingLabels {
				out[l] = true
			}
			return out
		}
		if n.Op == parser.LOR {
			if lhs == nil || rhs == nil {
				return nil
			}
			out := maps.Clone(lhs)
			maps.Copy(out, rhs)
			return out
		}
		return lhs
	default:
		c.fail("unexpected expression %T: teach the test about it", n)
		return map[string]bool{}
	}
}

// selector checks a metric selector: the metric exists, and each label it
// matches is on it. It returns the labels of the series it selects.
func (c *checker) selector(vs *parser.VectorSelector) map[string]bool {
	name := vs.Name
	if name == "" {
		c.fail("selector %s names no metric", vs)
		return map[string]bool{}
	}
	have, ok := c.e.lookup(name)
	if !ok {
		c.fail("metric %s is not exported by the manager or the verifier", name)
		return nil // unknown: nothing more is reported about its labels
	}
	have = maps.Clone(have)
	for _, l := range scrapeLabels {
		have[l] = true
	}
	for _, m := range vs.LabelMatchers {
		if m.Name == "__name__" {
			continue
		}
		if !have[m.Name] {
			c.fail("metric %s has no label %q (it has %v)", name, m.Name, sorted(have))
		}
	}
	return have
}

func (c *checker) need(have map[string]bool, label, what string) {
	if have != nil && !have[label] {
		c.fail("%s %q: no metric it reads carries that label (they carry %v)", what, label, sorted(have))
	}
}

func sorted(m map[string]bool) []string { return slices.Sorted(maps.Keys(m)) }

// TestDashboardShape checks what Grafana needs: a Prometheus datasource
// variable every panel uses, unique panel ids, and queries that parse.
func TestDashboardShape(t *testing.T) {
	d := load(t)
	if d.SchemaVersion < 39 {
		t.Errorf("schemaVersion %d, want 39 or later", d.SchemaVersion)
	}
	var vars []string
	for _, v := range d.Templating.List {
		vars = append(vars, v.Name)
		if v.Type == "query" && (v.Datasource == nil || v.Datasource.UID != "${datasource}") {
			t.Errorf("variable %q: datasource %+v, want uid ${datasource}", v.Name, v.Datasource)
		}
	}
	if want := []string{"datasource", "namespace", "keygroup"}; !slices.Equal(vars, want) {
		t.Errorf("variables %v, want %v", vars, want)
	}
	ids := map[int]string{}
	n := 0
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if other, ok := ids[p.ID]; ok {
				t.Errorf("panels %q and %q share id %d", other, p.Title, p.ID)
			}
			ids[p.ID] = p.Title
			if p.Type != "row" {
				n++
				if p.Datasource == nil || p.Datasource.Type != "prometheus" || p.Datasource.UID != "${datasource}" {
					t.Errorf("panel %q: datasource %+v, want prometheus ${datasource}", p.Title, p.Datasource)
				}
				if len(p.Targets) == 0 {
					t.Errorf("panel %q has no query", p.Title)
				}
				for _, tg := range p.Targets {
					if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
						t.Errorf("panel %q target %s: datasource %+v, want ${datasource}", p.Title, tg.RefID, tg.Datasource)
					}
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	if n < 10 {
		t.Errorf("%d panels, want the dozen or more the dashboard has", n)
	}
	qs, problems := queries(d)
	for _, p := range problems {
		t.Error(p)
	}
	for _, q := range qs {
		if _, err := parser.NewParser(parser.Options{}).ParseExpr(q.expr); err != nil {
			t.Errorf("%s: %v in %s", q.where, err, q.expr)
		}
	}
}

// TestCheckNamesPanelMetricAndLabel shows what the export check reports for
// a metric or label that does not exist.
func TestCheckNamesPanelMetricAndLabel(t *testing.T) {
	e := exported{
		"keyward_verifier_requests_total":           {typ: dto.MetricType_COUNTER, labels: map[string]bool{"namespace": true, "keygroup": true, "reason": true}},
		"keyward_verifier_request_duration_seconds": {typ: dto.MetricType_HISTOGRAM, labels: map[string]bool{}},
	}
	qs := []query{
		{where: `panel "ok"`, expr: `histogram_quantile(0.99, sum by (le) (rate(keyward_verifier_request_duration_seconds_bucket[5m])))`},
		{where: `panel "ok"`, expr: `sum by (reason) (rate(keyward_verifier_requests_total{namespace=~"ns"}[5m]))`, legend: "{{reason}}"},
		{where: `panel "label"`, expr: `sum(rate(keyward_verifier_requests_total{answer="ok"}[5m]))`},
		{where: `panel "metric"`, expr: `rate(keyward_verifier_answers_total[5m])`},
		{where: `panel "by"`, expr: `sum by (group) (rate(keyward_verifier_requests_total[5m]))`},
		{where: `panel "legend"`, expr: `sum by (reason) (rate(keyward_verifier_requests_total[5m]))`, legend: "{{keygroup}}"},
		{where: `panel "le"`, expr: `histogram_quantile(0.5, sum by (le) (rate(keyward_verifier_requests_total[5m])))`},
	}
	got := check(qs, e)
	want := []string{
		`panel "label": metric keyward_verifier_requests_total has no label "answer" (it has [instance job keygroup namespace reason])`,
		`panel "metric": metric keyward_verifier_answers_total is not exported by the manager or the verifier`,
		`panel "by": sum by "group": no metric it reads carries that label (they carry [instance job keygroup namespace reason])`,
		`panel "legend": legend {{keygroup}}: the query's result has no label "keygroup" (it has [reason])`,
		`panel "le": sum by "le": no metric it reads carries that label (they carry [instance job keygroup namespace reason])`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestChartCopy keeps the Helm chart's copy of the dashboard equal to this
// one, once the chart has it.
func TestChartCopy(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "charts", "keyward", "files", "keyward-dashboard.json"))
	if os.IsNotExist(err) {
		t.Log("the chart has no copy of the dashboard yet")
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != string(Dashboard) {
		t.Error("charts/keyward/files/keyward-dashboard.json differs from config/grafana/keyward-dashboard.json: copy it")
	}
}
