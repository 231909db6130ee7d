package logs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"secbuy/basic/logs"
)

// lines decodes each line of b as one JSON object.
func lines(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line is not one JSON object (%v): %q", err, line)
		}
		out = append(out, m)
	}
	return out
}

// only decodes b as exactly one JSON line.
func only(t *testing.T, b *bytes.Buffer) map[string]any {
	t.Helper()
	l := lines(t, b)
	if len(l) != 1 {
		t.Fatalf("%d lines, want 1: %q", len(l), b)
	}
	return l[0]
}

func TestJSONLines(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	l := logs.New(&b, "order-web", "info", "json")
	l.Info("first", "order", 7)
	l.Warn("second\nwith a newline")
	got := lines(t, &b)
	want := []struct{ level, msg string }{{"INFO", "first"}, {"WARN", "second\nwith a newline"}}
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d: %q", len(got), len(want), b.String())
	}
	for i, w := range want {
		if got[i]["service"] != "order-web" || got[i]["level"] != w.level || got[i]["msg"] != w.msg {
			t.Errorf("line %d: %v, want service order-web, level %s, msg %q", i, got[i], w.level, w.msg)
		}
		if _, ok := got[i]["time"]; !ok {
			t.Errorf("line %d has no time: %v", i, got[i])
		}
	}
	if got[0]["order"] != 7.0 {
		t.Errorf("order %v, want 7", got[0]["order"])
	}
	if _, ok := got[0]["trace_id"]; ok {
		t.Errorf("a line without a span has a trace_id: %v", got[0])
	}
}

func TestSpanIDs(t *testing.T) {
	t.Parallel()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tracetest.NewSpanRecorder()))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, span := tp.Tracer("t").Start(context.Background(), "x")
	defer span.End()

	var b bytes.Buffer
	l := logs.New(&b, "order-srv", "info", "json")
	l.InfoContext(ctx, "with a span")
	m := only(t, &b)
	sc := span.SpanContext()
	if m["trace_id"] != sc.TraceID().String() || m["span_id"] != sc.SpanID().String() {
		t.Errorf("trace_id %v span_id %v, want the span's %s %s", m["trace_id"], m["span_id"], sc.TraceID(), sc.SpanID())
	}
	if m["service"] != "order-srv" {
		t.Errorf("service %v, want order-srv", m["service"])
	}

	b.Reset()
	l.InfoContext(context.Background(), "without a span")
	if m := only(t, &b); m["trace_id"] != nil || m["span_id"] != nil {
		t.Errorf("a line without a span has ids: %v", m)
	}
}

func TestWith(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	l := logs.New(&b, "order-srv", "info", "json")
	logged := func(ctx context.Context) map[string]any {
		t.Helper()
		b.Reset()
		l.InfoContext(ctx, "m")
		return only(t, &b)
	}

	// The caller's slice is copied, not kept.
	attrs := []any{"commodity", 3}
	one := logs.With(context.Background(), attrs...)
	attrs[1] = 4
	// Three calls grow the slice to len 6 and (as append grows) cap 8: two calls from
	// there would share its free room if With did not copy.
	two := logs.With(one, "request", "r1")
	three := logs.With(two, "user", 9)
	left := logs.With(three, "order", 10)
	right := logs.With(three, "order", 20)

	for _, c := range []struct {
		name string
		ctx  context.Context
		want map[string]any
	}{
		{"one", one, map[string]any{"commodity": 3.0}},
		{"two", two, map[string]any{"commodity": 3.0, "request": "r1"}},
		{"three", three, map[string]any{"commodity": 3.0, "request": "r1", "user": 9.0}},
		{"left", left, map[string]any{"commodity": 3.0, "request": "r1", "user": 9.0, "order": 10.0}},
		{"right", right, map[string]any{"commodity": 3.0, "request": "r1", "user": 9.0, "order": 20.0}},
	} {
		m := logged(c.ctx)
		for k, v := range c.want {
			if m[k] != v {
				t.Errorf("%s: %s=%v, want %v (line %v)", c.name, k, m[k], v, m)
			}
		}
		for _, k := range []string{"commodity", "request", "user", "order"} {
			if _, want := c.want[k]; !want && m[k] != nil {
				t.Errorf("%s: has %s=%v, which a later With added", c.name, k, m[k])
			}
		}
	}

	// The attributes come with the span's ids, and beside the logger's own.
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tracetest.NewSpanRecorder()))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, span := tp.Tracer("t").Start(one, "x")
	defer span.End()
	b.Reset()
	l.With("batch", 1).InfoContext(ctx, "m")
	m := only(t, &b)
	if m["commodity"] != 3.0 || m["batch"] != 1.0 || m["trace_id"] != span.SpanContext().TraceID().String() {
		t.Errorf("line %v, want commodity 3, batch 1 and the span's trace_id", m)
	}
}

func TestLevel(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		level string
		want  []string // the messages kept of debug, info, warn, error
	}{
		{"debug", []string{"debug", "info", "warn", "error"}},
		{"info", []string{"info", "warn", "error"}},
		{"warn", []string{"warn", "error"}},
		{"error", []string{"error"}},
		{"WARN", []string{"warn", "error"}},
		{"", []string{"info", "warn", "error"}},
		{"loud", []string{"info", "warn", "error"}},
	} {
		t.Run(c.level, func(t *testing.T) {
			var b bytes.Buffer
			l := logs.New(&b, "s", c.level, "json")
			ctx := context.Background()
			l.DebugContext(ctx, "debug")
			l.InfoContext(ctx, "info")
			l.WarnContext(ctx, "warn")
			l.ErrorContext(ctx, "error")
			var got []string
			for _, m := range lines(t, &b) {
				got = append(got, m["msg"].(string))
			}
			if strings.Join(got, ",") != strings.Join(c.want, ",") {
				t.Errorf("kept %v, want %v", got, c.want)
			}
		})
	}
}

func TestFormat(t *testing.T) {
	t.Parallel()
	isJSON := func(s string) bool {
		var m map[string]any
		return json.Unmarshal([]byte(s), &m) == nil && m["msg"] == "hello" && m["service"] == "stock-srv"
	}
	file, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	for _, c := range []struct {
		format string
		json   bool
	}{
		{"json", true},
		{"auto", true}, // a buffer is no terminal
		{"", true},
		{"text", false},
	} {
		t.Run(c.format, func(t *testing.T) {
			var b bytes.Buffer
			logs.New(&b, "stock-srv", "info", c.format).Info("hello", "id", 5)
			line := b.String()
			if strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, "\n") {
				t.Fatalf("want one line: %q", line)
			}
			if got := isJSON(line); got != c.json {
				t.Errorf("JSON %v, want %v: %q", got, c.json, line)
			}
			if !c.json {
				for _, kv := range []string{"level=INFO", "msg=hello", "service=stock-srv", "id=5"} {
					if !strings.Contains(line, kv) {
						t.Errorf("text line has no %s: %q", kv, line)
					}
				}
			}
		})
	}

	t.Run("auto on a file", func(t *testing.T) {
		logs.New(file, "stock-srv", "info", "auto").Info("hello")
		b, err := os.ReadFile(file.Name())
		if err != nil {
			t.Fatal(err)
		}
		if !isJSON(string(b)) {
			t.Errorf("auto on a file that is no terminal wrote %q, want JSON", b)
		}
	})
}
