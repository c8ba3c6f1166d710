CREATE EXTERNAL TABLE IF NOT EXISTS `iot`.`plant_data_series` (
  `timeseriesid` string,
  `fileid` string,
  `alias` string,
  `assetid` string,
  `propertyid` string,
  `datatype` string
)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
LOCATION 's3://plant-repartitioned/catalog/series/';

CREATE EXTERNAL TABLE IF NOT EXISTS `iot`.`plant_data_asset_metadata` (
  `assetid` string,
  `assetname` string,
  `assetmodelid` string,
  `assetpropertyid` string,
  `assetpropertyname` string,
  `assetpropertydatatype` string,
  `assetpropertyunit` string,
  `assetpropertyalias` string,
  `timeseriesid` string,
  `timeseriesbucket` string
)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
LOCATION 's3://plant-cold/site-a/asset_metadata/';

CREATE OR REPLACE VIEW "iot"."plant_data_named" AS
SELECT d.*, s.alias, s.datatype, a.assetname, a.assetpropertyname, a.assetpropertyunit
FROM "iot"."plant_data" d
LEFT JOIN "iot"."plant_data_series" s ON s.fileid = d.seriesid
LEFT JOIN (
  SELECT assetid, assetpropertyid, max(assetname) AS assetname, max(assetpropertyname) AS assetpropertyname, max(assetpropertyunit) AS assetpropertyunit
  FROM "iot"."plant_data_asset_metadata"
  GROUP BY assetid, assetpropertyid
) a ON a.assetid = s.assetid AND a.assetpropertyid = s.propertyid;
