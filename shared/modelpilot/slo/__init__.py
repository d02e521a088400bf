"""SLO exporters: Prometheus rules (:mod:`.prometheus`), CloudWatch alarms (:mod:`.cloudwatch`),
OpenSLO documents (:mod:`.openslo`); :mod:`.documents` renders them as YAML."""
