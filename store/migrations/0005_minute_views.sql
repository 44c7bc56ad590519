-- 0005_minute_views: the questions of a live stream are asked by the
-- minute, not the hour. sentiment_1m and sentiment_5m have the columns of
-- sentiment_hourly, with `minute` (the bucket's start, UTC) in place of
-- `hour`. Gift and super-chat rows name what their value is
-- (metric 'gift_value', the name alert rules use), as rows written from
-- now on do.

CREATE VIEW sentiment_1m AS
SELECT source,
       max(platform)                                   AS platform,
       room,
       substr(ts, 1, 16) || ':00Z'                     AS minute,
       count(*)                                        AS items,
       sum(sentiment = 'positive')                     AS positive,
       sum(sentiment = 'negative')                     AS negative,
       round(1.0 * sum(sentiment = 'negative') / count(*), 4) AS negative_share,
       round(avg(score), 4)                            AS avg_score
FROM items
WHERE sentiment IS NOT NULL
GROUP BY source, room, minute;

CREATE VIEW sentiment_5m AS
SELECT source,
       max(platform)                                   AS platform,
       room,
       substr(ts, 1, 14) || printf('%02d', CAST(substr(ts, 15, 2) AS INTEGER) / 5 * 5) || ':00Z' AS minute,
       count(*)                                        AS items,
       sum(sentiment = 'positive')                     AS positive,
       sum(sentiment = 'negative')                     AS negative,
       round(1.0 * sum(sentiment = 'negative') / count(*), 4) AS negative_share,
       round(avg(score), 4)                            AS avg_score
FROM items
WHERE sentiment IS NOT NULL
GROUP BY source, room, minute;

UPDATE items SET metric = 'gift_value' WHERE kind IN ('gift', 'superchat') AND metric IS NULL;
