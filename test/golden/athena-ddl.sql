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
ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.avro.AvroSerDe'
WITH SERDEPROPERTIES ('avro.schema.literal'='{"type":"record","name":"RawDatum","namespace":"amazon.aws.iot.sitewise.raw","fields":[{"name":"seriesId","type":"string"},{"name":"timeInSeconds","type":"long"},{"name":"offsetInNanos","type":"long"},{"name":"quality","type":"string"},{"name":"doubleValue","type":["null","double"],"default":null},{"name":"stringValue","type":["null","string"],"default":null},{"name":"integerValue","type":["null","int"],"default":null},{"name":"booleanValue","type":["null","boolean"],"default":null},{"name":"jsonValue","type":["null","string"],"default":null},{"name":"recordVersion","type":["null","long"],"default":null}]}')
STORED AS INPUTFORMAT 'org.apache.hadoop.hive.ql.io.avro.AvroContainerInputFormat'
OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.avro.AvroContainerOutputFormat'
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
