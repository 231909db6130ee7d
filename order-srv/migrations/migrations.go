// Package migrations embeds order-srv's schema, applied at start-up by basic/db.Migrate.
package migrations

import "embed"

// FS holds the versioned SQL files.
//
//go:embed *.sql
var FS embed.FS
