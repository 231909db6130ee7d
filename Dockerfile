# One image holds all six secbuy services; docker-compose.yml picks one per container
# with `command:` (for example `command: ["order-srv"]`).

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/ \
      ./stock-srv ./stock-web ./order-srv ./order-web ./payment-srv ./payment-web

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home secbuy
COPY --from=build /out/ /usr/local/bin/
USER secbuy
# The 8087-8089 web ports and 8090, an RPC service's health and metrics (curl is there for
# the healthchecks); the RPC services listen on ports the registry announces.
EXPOSE 8087 8088 8089 8090
CMD ["sh", "-c", "echo 'choose a service: stock-srv stock-web order-srv order-web payment-srv payment-web' >&2; exit 2"]
