<?xml version="1.0" encoding="UTF-8"?>
<!-- Renders UWS 1.1 job and job-list documents as HTML in a browser. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:uws="http://www.ivoa.net/xml/UWS/v1.0" xmlns:xlink="http://www.w3.org/1999/xlink"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" exclude-result-prefixes="uws xlink xsi">
  <xsl:output method="html" encoding="UTF-8"/>
  <xsl:template match="/">
    <html><head><title>UWS</title>
      <style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}
      td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}</style></head>
    <body><xsl:apply-templates/></body></html>
  </xsl:template>
  <xsl:template match="uws:jobs">
    <h1>Jobs</h1>
    <table><tr><th>Job</th><th>Phase</th><th>Run id</th><th>Created</th></tr>
      <xsl:for-each select="uws:jobref">
        <tr><td><a href="{@xlink:href}"><xsl:value-of select="@id"/></a></td>
          <td><xsl:value-of select="uws:phase"/></td><td><xsl:value-of select="uws:runId"/></td>
          <td><xsl:value-of select="uws:creationTime"/></td></tr>
      </xsl:for-each>
    </table>
    <form method="post" action=""><p>New job: parameters can be added as query string.</p></form>
  </xsl:template>
  <xsl:template match="uws:job">
    <h1>Job <xsl:value-of select="uws:jobId"/></h1>
    <table>
      <tr><th>Phase</th><td><xsl:value-of select="uws:phase"/></td></tr>
      <tr><th>Owner</th><td><xsl:value-of select="uws:ownerId"/></td></tr>
      <tr><th>Created</th><td><xsl:value-of select="uws:creationTime"/></td></tr>
      <tr><th>Started</th><td><xsl:value-of select="uws:startTime"/></td></tr>
      <tr><th>Ended</th><td><xsl:value-of select="uws:endTime"/></td></tr>
      <tr><th>Execution duration (s)</th><td><xsl:value-of select="uws:executionDuration"/></td></tr>
      <tr><th>Destruction</th><td><xsl:value-of select="uws:destruction"/></td></tr>
      <xsl:if test="uws:errorSummary"><tr><th>Error</th>
        <td><xsl:value-of select="uws:errorSummary/uws:message"/></td></tr></xsl:if>
    </table>
    <h2>Parameters</h2>
    <table><xsl:for-each select="uws:parameters/uws:parameter">
      <tr><th><xsl:value-of select="@id"/></th><td><xsl:value-of select="."/></td></tr>
    </xsl:for-each></table>
    <h2>Results</h2>
    <ul><xsl:for-each select="uws:results/uws:result">
      <li><a href="{@xlink:href}"><xsl:value-of select="@id"/></a></li>
    </xsl:for-each></ul>
    <form method="post" action="{uws:jobId}/phase">
      <button name="PHASE" value="RUN">Run</button>
      <button name="PHASE" value="ABORT">Abort</button>
    </form>
    <form method="post" action="{uws:jobId}"><button name="ACTION" value="DELETE">Delete</button></form>
  </xsl:template>
</xsl:stylesheet>
