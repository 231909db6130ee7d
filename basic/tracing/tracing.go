// Package tracing is secbuy's OpenTelemetry: one trace per press, from order-web through
// order-srv and stock-srv (and their Postgres statements) and on through the outbox and
// NATS to payment-srv. The W3C traceparent travels in go-micro's metadata between services
// (go-micro's own wrappers), in each batched item (a batch span has the first item's
// trace as its parent and links to every item's), in the outbox row, and in the NATS
// message's headers. Tracing is off unless Setup finds an exporter; off, nothing here
// does any work.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	microotel "go-micro.dev/v6/wrapper/trace/opentelemetry"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

var enabled bool

// Enabled says whether this process traces (Setup found an exporter).
func Enabled() bool { return enabled }

// Setup starts tracing for service: over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set
// (the exporter reads the rest of the standard OTEL_ variables, and the sampler comes from
// OTEL_TRACES_SAMPLER: every trace by default), else into file (appended, one JSON span per
// line) if it is not empty. With neither it does nothing. The returned stop flushes the
// spans not yet exported.
func Setup(ctx context.Context, service, file string) (stop func(context.Context) error, err error) {
	var exp sdktrace.SpanExporter
	var opts []sdktrace.BatchSpanProcessorOption
	switch {
	case os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "":
		exp, err = otlptracehttp.New(ctx)
	case file != "":
		var f *os.File
		f, err = os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err == nil {
			// One write per span: the services of a run may share the file.
			exp, err = stdouttrace.New(stdouttrace.WithWriter(f))
		}
		opts = append(opts, sdktrace.WithBatchTimeout(200*time.Millisecond))
	default:
		return func(context.Context) error { return nil }, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(semconv.ServiceName(service)))
	if err != nil {
		return nil, fmt.Errorf("tracing resource: %w", err)
	}
	// A batch span links to each of its items: room for the biggest batch (order-srv's
	// MaxBatch), where the SDK's default keeps 128.
	limits := sdktrace.NewSpanLimits()
	limits.LinkCountLimit = MaxLinks
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp, opts...), sdktrace.WithResource(res),
		sdktrace.WithRawSpanLimits(limits))
	otel.SetTracerProvider(tp)
	// The W3C trace context only: no baggage, which a buyer could send and every RPC
	// would carry on.
	otel.SetTextMapPropagator(propagation.TraceContext{})
	enabled = true
	return tp.Shutdown, nil
}

// MaxLinks is the most links a span keeps: one per item of the biggest batch.
const MaxLinks = 1024

// Header is the name of the W3C trace context in a message's headers (NATS).
const Header = "traceparent"

var none = noop.Span{}

// Traceparent returns the W3C traceparent of ctx's span, "" when there is none.
func Traceparent(ctx context.Context) string {
	if !enabled || !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c[Header]
}

// parse returns the span context of a traceparent (invalid if it is not one).
func parse(traceparent string) trace.SpanContext {
	if traceparent == "" {
		return trace.SpanContext{}
	}
	ctx := propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{Header: traceparent})
	return trace.SpanContextFromContext(ctx)
}

// Start starts span name as a child of ctx's span, or, if ctx has none, of the span of
// traceparent (a message's, a row's). It goes through go-micro's StartSpanFromContext,
// which takes the parent from go-micro's metadata when that names one (under an RPC
// handler, the handler's span) and writes the new span there, so that the RPCs made under
// it are its children. Start every span under an RPC with it, not with the plain otel API.
func Start(ctx context.Context, name string, traceparent string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if !enabled {
		return ctx, none
	}
	if !trace.SpanContextFromContext(ctx).IsValid() {
		if sc := parse(traceparent); sc.IsValid() {
			ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
		}
	}
	return microotel.StartSpanFromContext(ctx, nil, name, trace.WithAttributes(attrs...))
}

// StartBatch starts span name for a batch of n items, item i carrying traceparent(i): a
// child of ctx's span (as Start), or, if ctx has none, of the first sampled item's; it
// links to every item's span, so each buyer's trace reaches the batch that served it.
// traceparent is not called when tracing is off.
func StartBatch(ctx context.Context, name string, n int, traceparent func(i int) string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if !enabled {
		return ctx, none
	}
	var links []trace.Link
	var parent trace.SpanContext
	for i := range n {
		if sc := parse(traceparent(i)); sc.IsValid() {
			links = append(links, trace.Link{SpanContext: sc})
			if !parent.IsSampled() {
				parent = sc
			}
		}
	}
	if !trace.SpanContextFromContext(ctx).IsValid() && parent.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, parent)
	}
	attrs = append(attrs, attribute.Int("batch.size", n))
	return microotel.StartSpanFromContext(ctx, nil, name, trace.WithLinks(links...), trace.WithAttributes(attrs...))
}

// End ends span, marking it failed with err if err is not nil.
func End(span trace.Span, err error) {
	if err != nil && !errors.Is(err, context.Canceled) {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// IDs returns the trace and span ids of ctx's span ("" when there is none): for a log line.
func IDs(ctx context.Context) (traceID, spanID string) {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return "", ""
	}
	return sc.TraceID().String(), sc.SpanID().String()
}
