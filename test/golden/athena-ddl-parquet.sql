CREATE EXTERNAL TABLE IF NOT EXISTS `iot`.`plant_data` (
  `seriesid` string,
  `timeinseconds` bigint,
  `offsetinnanos` bigint,
  `quality` string,
  `doublevalue` double,
  `stringvalue` string,
  `integervalue` int,
  `booleanvalue` boolean,
  `jsonvalue` string,
  `recordversion` bigint
)
PARTITIONED BY (
  `startyear` int,
  `startmonth` int,
  `startday` int
)
STORED AS PARQUET
LOCATION 's3://plant-repartitioned/sitewise/consolidated/'
TBLPROPERTIES (
  'projection.enabled'='true',
  'projection.startyear.type'='integer',
  'projection.startyear.range'='2020,2099',
  'projection.startmonth.type'='integer',
  'projection.startmonth.range'='1,12',
  'projection.startday.type'='integer',
  'projection.startday.range'='1,31',
  'storage.location.template'='s3://plant-repartitioned/sitewise/consolidated/startYear=${startyear}/startMonth=${startmonth}/startDay=${startday}/'
);
