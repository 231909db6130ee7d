package tracing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go-micro.dev/v6/metadata"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Tracing is process-global (enabled, and otel's provider and propagator), so none of
// these tests is parallel.

// Two buyers' traceparents, as a batched item or an outbox row carries them.
const (
	tpA = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tpB = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
)

// record turns tracing on, as Setup does, but into a recorder of the spans; the test's
// cleanup turns it off again.
func record(t *testing.T) *tracetest.SpanRecorder {
	t.Helper()
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	enabled = true
	t.Cleanup(func() {
		enabled = false
		otel.SetTracerProvider(noop.NewTracerProvider())
		otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator())
		_ = tp.Shutdown(context.Background())
	})
	return sr
}

// ended returns the one span sr saw end.
func ended(t *testing.T, sr *tracetest.SpanRecorder) sdktrace.ReadOnlySpan {
	t.Helper()
	spans := sr.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans ended, want 1", len(spans))
	}
	return spans[0]
}

// mustParse returns the span context of a traceparent the test made.
func mustParse(t *testing.T, traceparent string) trace.SpanContext {
	t.Helper()
	sc := parse(traceparent)
	if !sc.IsValid() {
		t.Fatalf("traceparent %q does not parse", traceparent)
	}
	return sc
}

// checkParent fails t unless span is in parent's trace, with parent as its parent.
func checkParent(t *testing.T, span sdktrace.ReadOnlySpan, parent trace.SpanContext) {
	t.Helper()
	if got := span.SpanContext().TraceID(); got != parent.TraceID() {
		t.Errorf("%s: trace %s, want %s", span.Name(), got, parent.TraceID())
	}
	if got := span.Parent().SpanID(); got != parent.SpanID() {
		t.Errorf("%s: parent span %s, want %s", span.Name(), got, parent.SpanID())
	}
}

// checkMetadata fails t unless ctx's go-micro metadata carries the traceparent of ctx's
// span (what an RPC made under ctx sends as its parent).
func checkMetadata(t *testing.T, ctx context.Context, span trace.Span) {
	t.Helper()
	md, ok := metadata.FromContext(ctx)
	if !ok {
		t.Fatal("no go-micro metadata in the span's ctx")
	}
	if got, want := md["Traceparent"], Traceparent(ctx); got != want || want == "" {
		t.Errorf("metadata Traceparent %q, want the ctx's %q", got, want)
	}
	if got := parse(md["Traceparent"]); got.SpanID() != span.SpanContext().SpanID() {
		t.Errorf("metadata names span %s, want the new span %s", got.SpanID(), span.SpanContext().SpanID())
	}
}

var traceparentForm = regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-01$`)

func TestTraceparentRoundTrip(t *testing.T) {
	sr := record(t)
	ctx, span := Start(context.Background(), "root", "")
	tp := Traceparent(ctx)
	End(span, nil)
	if !traceparentForm.MatchString(tp) {
		t.Fatalf("Traceparent %q is not a sampled W3C traceparent", tp)
	}
	sc := mustParse(t, tp)
	if got := ended(t, sr).SpanContext(); sc.TraceID() != got.TraceID() || sc.SpanID() != got.SpanID() {
		t.Errorf("traceparent %q names %s/%s, want the span's %s/%s", tp, sc.TraceID(), sc.SpanID(), got.TraceID(), got.SpanID())
	}
	if traceID, spanID := IDs(ctx); traceID != sc.TraceID().String() || spanID != sc.SpanID().String() {
		t.Errorf("IDs %s %s, want %s %s", traceID, spanID, sc.TraceID(), sc.SpanID())
	}
	if got := Traceparent(context.Background()); got != "" {
		t.Errorf("Traceparent of a ctx without a span: %q, want empty", got)
	}
	if traceID, spanID := IDs(context.Background()); traceID != "" || spanID != "" {
		t.Errorf("IDs of a ctx without a span: %q %q, want empty", traceID, spanID)
	}
}

func TestStart(t *testing.T) {
	t.Run("under a traceparent", func(t *testing.T) {
		sr := record(t)
		ctx, span := Start(context.Background(), "publish", tpA, attribute.Int64("order", 7))
		checkMetadata(t, ctx, span)
		End(span, nil)
		s := ended(t, sr)
		checkParent(t, s, mustParse(t, tpA))
		if !s.Parent().IsRemote() {
			t.Error("the traceparent's span is not a remote parent")
		}
		if s.Name() != "publish" {
			t.Errorf("name %q, want publish", s.Name())
		}
		if !hasAttr(s, attribute.Int64("order", 7)) {
			t.Errorf("attributes %v, want order=7", s.Attributes())
		}
	})
	for _, bad := range []string{"", "garbage", "00-00000000000000000000000000000000-0000000000000000-01"} {
		t.Run(fmt.Sprintf("under %q", bad), func(t *testing.T) {
			sr := record(t)
			_, span := Start(context.Background(), "root", bad)
			End(span, nil)
			if s := ended(t, sr); s.Parent().IsValid() {
				t.Errorf("a span under traceparent %q has parent %s, want a root span", bad, s.Parent().SpanID())
			}
		})
	}
	t.Run("under ctx's span", func(t *testing.T) {
		sr := record(t)
		ctx, outer := Start(context.Background(), "outer", "")
		ctx, inner := Start(ctx, "inner", tpA) // ctx's span wins over the traceparent
		checkMetadata(t, ctx, inner)
		End(inner, nil)
		End(outer, nil)
		spans := sr.Ended()
		if len(spans) != 2 {
			t.Fatalf("%d spans ended, want 2", len(spans))
		}
		checkParent(t, spans[0], outer.SpanContext())
	})
	t.Run("under a span of another tracer", func(t *testing.T) {
		sr := record(t)
		ctx, outer := otel.Tracer("other").Start(context.Background(), "outer")
		_, inner := Start(ctx, "inner", tpA)
		End(inner, nil)
		outer.End()
		spans := sr.Ended()
		if len(spans) != 2 {
			t.Fatalf("%d spans ended, want 2", len(spans))
		}
		checkParent(t, spans[0], outer.SpanContext())
	})
}

func hasAttr(s sdktrace.ReadOnlySpan, want attribute.KeyValue) bool {
	for _, a := range s.Attributes() {
		if a == want {
			return true
		}
	}
	return false
}

// at is the traceparent of item i of items.
func at(items []string) func(int) string { return func(i int) string { return items[i] } }

func TestStartBatch(t *testing.T) {
	items := []string{"", tpA, "garbage", tpB}
	links := []trace.SpanContext{mustParse(t, tpA), mustParse(t, tpB)}
	checkLinks := func(t *testing.T, s sdktrace.ReadOnlySpan) {
		t.Helper()
		got := s.Links()
		if len(got) != len(links) {
			t.Fatalf("%d links, want %d: %v", len(got), len(links), got)
		}
		for i, l := range got {
			if !l.SpanContext.Equal(links[i]) {
				t.Errorf("link %d: %s/%s, want %s/%s", i, l.SpanContext.TraceID(), l.SpanContext.SpanID(), links[i].TraceID(), links[i].SpanID())
			}
		}
		if !hasAttr(s, attribute.Int("batch.size", len(items))) {
			t.Errorf("attributes %v, want batch.size=%d", s.Attributes(), len(items))
		}
	}

	t.Run("under the first valid item", func(t *testing.T) {
		sr := record(t)
		ctx, span := StartBatch(context.Background(), "sell", len(items), at(items), attribute.String("commodity", "3"))
		checkMetadata(t, ctx, span)
		End(span, nil)
		s := ended(t, sr)
		checkParent(t, s, links[0])
		checkLinks(t, s)
		if !hasAttr(s, attribute.String("commodity", "3")) {
			t.Errorf("attributes %v, want commodity=3 too", s.Attributes())
		}
	})
	t.Run("under ctx's span", func(t *testing.T) {
		sr := record(t)
		ctx, outer := Start(context.Background(), "handler", "")
		_, span := StartBatch(ctx, "sell", len(items), at(items))
		End(span, nil)
		End(outer, nil)
		spans := sr.Ended()
		if len(spans) != 2 {
			t.Fatalf("%d spans ended, want 2", len(spans))
		}
		checkParent(t, spans[0], outer.SpanContext())
		checkLinks(t, spans[0])
	})
	t.Run("under a span of another tracer", func(t *testing.T) {
		sr := record(t)
		ctx, outer := otel.Tracer("other").Start(context.Background(), "handler")
		_, span := StartBatch(ctx, "sell", len(items), at(items))
		End(span, nil)
		outer.End()
		spans := sr.Ended()
		if len(spans) != 2 {
			t.Fatalf("%d spans ended, want 2", len(spans))
		}
		checkParent(t, spans[0], outer.SpanContext())
	})
	t.Run("under the first sampled item", func(t *testing.T) {
		sr := record(t)
		unsampled := "00-11111111111111111111111111111111-2222222222222222-00"
		_, span := StartBatch(context.Background(), "sell", 2, at([]string{unsampled, tpB}))
		End(span, nil)
		s := ended(t, sr)
		checkParent(t, s, mustParse(t, tpB))
		if len(s.Links()) != 2 {
			t.Errorf("%d links, want 2 (the unsampled item's too)", len(s.Links()))
		}
	})
	t.Run("no valid item", func(t *testing.T) {
		sr := record(t)
		_, span := StartBatch(context.Background(), "sell", 2, at([]string{"", "garbage"}))
		End(span, nil)
		s := ended(t, sr)
		if s.Parent().IsValid() || len(s.Links()) != 0 {
			t.Errorf("parent %v, links %v: want a root span without links", s.Parent(), s.Links())
		}
		if !hasAttr(s, attribute.Int("batch.size", 2)) {
			t.Errorf("attributes %v, want batch.size=2", s.Attributes())
		}
	})
}

func TestEnd(t *testing.T) {
	for _, c := range []struct {
		name       string
		err        error
		wantStatus codes.Code
		wantEvents int // the recorded error
	}{
		{"success", nil, codes.Unset, 0},
		{"failure", fmt.Errorf("sell stock 7: %w", errors.New("database down")), codes.Error, 1},
		{"cancelled", fmt.Errorf("sell stock 7: %w", context.Canceled), codes.Unset, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			sr := record(t)
			_, span := Start(context.Background(), "x", "")
			End(span, c.err)
			s := ended(t, sr)
			if s.Status().Code != c.wantStatus {
				t.Errorf("status %v, want %v", s.Status().Code, c.wantStatus)
			}
			if c.wantStatus == codes.Error && s.Status().Description != c.err.Error() {
				t.Errorf("status description %q, want %q", s.Status().Description, c.err.Error())
			}
			if len(s.Events()) != c.wantEvents {
				t.Errorf("%d events, want %d: %v", len(s.Events()), c.wantEvents, s.Events())
			}
		})
	}
}

// Off, nothing does any work: the ctx comes back as it was, with a span that records
// nothing, and no traceparent is made.
func TestDisabled(t *testing.T) {
	sr := record(t)
	enabled = false
	if Enabled() {
		t.Fatal("Enabled with enabled false")
	}
	// A span that something else started (a library's own tracer) is still not passed on.
	spanCtx, other := otel.Tracer("other").Start(context.Background(), "other")
	other.End()
	sr.Reset()
	if got := Traceparent(spanCtx); got != "" {
		t.Errorf("Traceparent %q, want empty when off", got)
	}

	type key struct{}
	ctx := context.WithValue(context.Background(), key{}, 1)
	for name, start := range map[string]func() (context.Context, trace.Span){
		"Start":      func() (context.Context, trace.Span) { return Start(ctx, "x", tpA) },
		"StartBatch": func() (context.Context, trace.Span) { return StartBatch(ctx, "x", 2, at([]string{tpA, tpB})) },
	} {
		got, span := start()
		if got != ctx {
			t.Errorf("%s changed the ctx", name)
		}
		if span.IsRecording() || span.SpanContext().IsValid() {
			t.Errorf("%s: span recording %v, valid %v; want a no-op span", name, span.IsRecording(), span.SpanContext().IsValid())
		}
		if _, ok := metadata.FromContext(got); ok {
			t.Errorf("%s set go-micro metadata", name)
		}
		End(span, errors.New("x"))
	}
	if n := len(sr.Started()); n != 0 {
		t.Errorf("%d spans started when off, want 0", n)
	}
}

// setupAlone makes t's Setup see no OTLP endpoint, and undoes what Setup turned on when t
// ends.
func setupAlone(t *testing.T) {
	t.Helper()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	t.Cleanup(func() {
		enabled = false
		otel.SetTracerProvider(noop.NewTracerProvider())
		otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator())
	})
}

// Setup without an exporter leaves tracing off; with a file, spans go there as JSON.
func TestSetup(t *testing.T) {
	setupAlone(t)
	ctx := context.Background()

	stop, err := Setup(ctx, "order-srv", "")
	if err != nil || stop == nil {
		t.Fatalf("Setup without an exporter: stop %v, err %v", stop != nil, err)
	}
	if Enabled() {
		t.Error("Setup without an exporter turned tracing on")
	}
	if err := stop(ctx); err != nil {
		t.Errorf("stop: %v", err)
	}

	file := filepath.Join(t.TempDir(), "spans.json")
	stop, err = Setup(ctx, "order-srv", file)
	if err != nil {
		t.Fatalf("Setup into a file: %v", err)
	}
	if !Enabled() {
		t.Error("Setup into a file left tracing off")
	}
	sctx, span := Start(ctx, "press", tpA)
	tp := Traceparent(sctx)
	End(span, nil)
	if err := stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"Name":"press"`, `"order-srv"`, mustParse(t, tpA).TraceID().String(), mustParse(t, tp).SpanID().String()} {
		if !strings.Contains(string(b), want) {
			t.Errorf("span file has no %s: %s", want, b)
		}
	}
}

// A batch as big as order-srv's keeps a link to every item (the SDK's default keeps 128).
func TestSetupKeepsEveryLink(t *testing.T) {
	setupAlone(t)
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "spans.json")
	stop, err := Setup(ctx, "order-srv", file)
	if err != nil {
		t.Fatal(err)
	}
	items := make([]string, MaxLinks)
	for i := range items {
		items[i] = fmt.Sprintf("00-%032x-%016x-01", i+1, i+1)
	}
	_, span := StartBatch(ctx, "sell", len(items), at(items))
	End(span, nil)
	if err := stop(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Links        []json.RawMessage
		DroppedLinks int
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Links) != MaxLinks || got.DroppedLinks != 0 {
		t.Errorf("%d links kept, %d dropped; want all %d", len(got.Links), got.DroppedLinks, MaxLinks)
	}
}
