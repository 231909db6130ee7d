// Package logs makes a service's log/slog logger: JSON lines in production, readable text
// in a terminal, and on every line logged with a context the trace and span ids of its
// span and the attributes the context was given (With): the commodity, the order, the
// request id of the press it is about.
package logs

import (
	"context"
	"io"
	"log/slog"
	"os"

	"golang.org/x/term"

	"secbuy/basic/tracing"
)

// New returns the logger of service, writing to w at level ("debug", "info", "warn",
// "error"; anything else is info) in format: "json", "text", or "auto" (text when w is a
// terminal, JSON otherwise).
func New(w io.Writer, service, level, format string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: l}
	var h slog.Handler
	if format == "text" || format == "auto" && isTerminal(w) {
		h = slog.NewTextHandler(w, opts)
	} else {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(contextHandler{h}).With("service", service)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

type attrsKey struct{}

// With returns ctx carrying attrs (key-value pairs, as slog's), added to every line
// logged with it.
func With(ctx context.Context, attrs ...any) context.Context {
	prev, _ := ctx.Value(attrsKey{}).([]any)
	return context.WithValue(ctx, attrsKey{}, append(prev[:len(prev):len(prev)], attrs...))
}

// contextHandler adds a line's context: its span's ids and the attributes of With.
type contextHandler struct{ slog.Handler }

func (h contextHandler) Handle(ctx context.Context, r slog.Record) error {
	if traceID, spanID := tracing.IDs(ctx); traceID != "" {
		r.AddAttrs(slog.String("trace_id", traceID), slog.String("span_id", spanID))
	}
	if attrs, ok := ctx.Value(attrsKey{}).([]any); ok {
		r.Add(attrs...)
	}
	return h.Handler.Handle(ctx, r)
}

func (h contextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return contextHandler{h.Handler.WithAttrs(attrs)}
}

func (h contextHandler) WithGroup(name string) slog.Handler {
	return contextHandler{h.Handler.WithGroup(name)}
}
