def test_session_database_is_real_postgres(pg_conn):
    with pg_conn.cursor() as cur:
        cur.execute("select current_database(), version()")
        db, version = cur.fetchone()
    assert db.startswith("dataplatform_test")
    assert version.startswith("PostgreSQL")
